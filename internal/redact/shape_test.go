package redact

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"strings"
	"testing"
)

// testPEM is a private key's layout: 64-character lines and a short last
// line, as PEM files have.
var testPEM = "-----BEGIN PRIVATE KEY-----\n" +
	strings.Repeat("MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7VJTUt9Us8cKj\n", 25) +
	"b3MzKJ3xQ==\n" +
	"-----END PRIVATE KEY-----\n"

// TestFlushReleasesStreamsWhateverTheVaultHolds: a secret with line breaks
// (a PEM key, a JSON key file) or non-ASCII letters must not make a Flush
// keep back a whole SSE event or NDJSON line — one such value in the vault
// would stall every agent's LLM stream by a window (§4.4). Before the
// line-by-line search and the Latin-1 class, each released nothing.
func TestFlushReleasesStreamsWhateverTheVaultHolds(t *testing.T) {
	for _, c := range []struct{ name, secret string }{
		{"PEM key", testPEM},
		{"password ending in a newline", "hunter2-hunter2\n"},
		{"CRLF lines", "first-line-secret\r\nsecond-line-secret\r\n"},
		{"Latin-1 password", "Passwört-geheim-1"},
	} {
		r, err := New([][]byte{[]byte(c.secret)}, Options{})
		if err != nil {
			t.Fatal(err)
		}
		if r.HoldsLineBreaks() {
			t.Errorf("%s: HoldsLineBreaks", c.name)
		}
		for _, event := range []string{"data: {\"choices\":[{\"delta\":{\"content\":\"Hello\"}}]}\n\n", "{\"response\":\"hi\",\"done\":false}\n"} {
			var out bytes.Buffer
			w := r.NewWriter(&out)
			w.Write([]byte(event))
			w.Flush()
			if out.Len() != len(event) {
				t.Errorf("%s (window %d): a Flush after %q released %d of its %d bytes", c.name, r.Window(), event, out.Len(), len(event))
			}
		}
	}
}

// TestBeyondLatin1HoldsLineBreaks: under UTF-16 a character beyond Latin-1
// can have a line break for a byte, so streams wait; HoldsLineBreaks says so
// (the proxy warns at start), and without UTF-16 it does not happen.
func TestBeyondLatin1HoldsLineBreaks(t *testing.T) {
	euro := [][]byte{[]byte("price-in-€-secret")}
	r, err := New(euro, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if !r.HoldsLineBreaks() {
		t.Error("a secret beyond Latin-1 under UTF-16: HoldsLineBreaks is false")
	}
	// An encoded U+FFFD is a character beyond Latin-1 too; only a byte
	// that is not UTF-8 stands for a Latin-1 code point.
	if r, _ := New([][]byte{[]byte("replaced-\uFFFD-secret")}, Options{}); !r.HoldsLineBreaks() {
		t.Error("a secret with U+FFFD under UTF-16: HoldsLineBreaks is false")
	}
	if r, _ = New(euro, Options{Encodings: AllEncodings &^ UTF16}); r.HoldsLineBreaks() {
		t.Error("without UTF-16: HoldsLineBreaks is true")
	}
}

// TestMultilineSecretIsRedacted: searched for line by line raw and whole in
// its escaped forms, a PEM key is still kept from the agent: echoed as it
// is (every line of 8 bytes or more), in base64 (a Kubernetes Secret), and
// as a JSON string (a key file embedded in JSON), also with CRLF.
func TestMultilineSecretIsRedacted(t *testing.T) {
	r, err := New([][]byte{[]byte(testPEM)}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	js, _ := json.Marshal(testPEM)
	for name, in := range map[string]string{
		"raw":        "key: " + testPEM + "end",
		"raw CRLF":   strings.ReplaceAll(testPEM, "\n", "\r\n"),
		"base64":     `{"data":{"tls.key":"` + base64.StdEncoding.EncodeToString([]byte(testPEM)) + `"}}`,
		"JSON":       `{"private_key":` + string(js) + `}`,
		"one line":   "line: MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7VJTUt9Us8cKj!",
		"percent":    "k=" + escapeAllPercent(testPEM),
		"stream cut": testPEM,
	} {
		out, n := r.Redact([]byte(in))
		if name == "stream cut" {
			out, n = streamRedact(t, r, []byte(in), []int{10, 70, 500, 1000}, []bool{true, true, true, true}, nil)
		}
		if n == 0 || bytes.Contains(out, []byte("MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7VJTUt9Us8cKj")) ||
			bytes.Contains(out, []byte(base64.StdEncoding.EncodeToString([]byte(testPEM))[:40])) {
			t.Errorf("%s: the key survives (%d replacements):\n%.300q", name, n, out)
		}
	}
}

// TestPEMArmorIsNotASecret: the BEGIN and END lines are the same in every
// key; searched for as lines of the key, they would redact every mention
// of the format.
func TestPEMArmorIsNotASecret(t *testing.T) {
	r, err := New([][]byte{[]byte(testPEM)}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	in := "generate one with openssl; it starts with -----BEGIN PRIVATE KEY-----\nand ends with -----END PRIVATE KEY-----\n"
	if out, n := r.Redact([]byte(in)); n != 0 {
		t.Fatalf("PEM armor was redacted: %q", out)
	}
}

func escapeAllPercent(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		b.WriteString("%" + strings.ToUpper(hexByte(s[i])))
	}
	return b.String()
}

func hexByte(c byte) string {
	const digits = "0123456789abcdef"
	return string([]byte{digits[c>>4], digits[c&15]})
}

// TestLiteralEscapeByteBeforeFirstEscape: an escape byte that starts no
// escape ("%zz", "&jerry", `\q`) is a literal character of a secret like
// any other; a hit whose first real escape comes after one was missed, and
// the whole key went to the agent.
func TestLiteralEscapeByteBeforeFirstEscape(t *testing.T) {
	for _, c := range []struct{ secret, form string }{
		{"pa%zz-word-12345", "pa%zz-word-1234%35"},
		{"pa%zz-word-12345", "pa%zz-word-1234%35 and more"},
		{"tom&jerry-secret1", "tom&jerry-secret&#49;"},
		{"tom&jerry-secret1", "<p>tom&jerry-secret&#x31;</p>"},
		{`C:\qtemp-key-0001`, `C:\qtemp-key-000\u0031`},
	} {
		r, err := New([][]byte{[]byte(c.secret)}, Options{})
		if err != nil {
			t.Fatal(err)
		}
		if out, n := r.Redact([]byte(c.form)); n == 0 || bytes.Contains(out, []byte(c.secret[:8])) {
			t.Errorf("secret %q in the mixed form %q passes: %q", c.secret, c.form, out)
		}
		out, n := streamRedact(t, r, []byte(c.form), []int{3, 9}, []bool{true, true}, nil)
		if n == 0 || bytes.Contains(out, []byte(c.secret[:8])) {
			t.Errorf("secret %q in the mixed form %q, streamed, passes: %q", c.secret, c.form, out)
		}
	}
}
