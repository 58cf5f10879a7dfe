package redact

import (
	"bytes"
	"encoding/base64"
	"math/rand/v2"
	"strings"
	"testing"
)

// TestEachEncodingIsRedacted plants each wire form of each test secret
// between plain text and checks that it is replaced and the text around it
// is kept.
func TestEachEncodingIsRedacted(t *testing.T) {
	r, err := New(testSecrets, Options{})
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(1, 1))
	for _, e := range encoders() {
		for si, s := range testSecrets {
			t.Run(e.name, func(t *testing.T) {
				enc := e.enc(rng, s)
				in := []byte("before. " + string(enc) + " .after")
				out, n := r.Redact(in)
				if n == 0 {
					t.Fatalf("secret #%d as %s was not found in %q", si+1, e.name, in)
				}
				assertClean(t, out, testSecrets)
				if !bytes.HasPrefix(out, []byte("before. ")) || !bytes.HasSuffix(out, []byte(" .after")) {
					t.Fatalf("text around the secret changed: %q", out)
				}
			})
		}
	}
}

// TestBase64EveryAlignment checks the full encoded span is removed at each
// offset of the secret within a base64 group: only characters that depend on
// neighbouring bytes alone may remain.
func TestBase64EveryAlignment(t *testing.T) {
	secret := []byte("ghp_9aZ/k+Qx=7Lm_2")
	r, err := New([][]byte{secret}, Options{Encodings: Base64})
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		for pre := 0; pre < 6; pre++ {
			for post := 0; post < 4; post++ {
				plain := []byte(strings.Repeat("u", pre) + string(secret) + strings.Repeat("v", post))
				enc := e.EncodeToString(plain)
				out, n := r.Redact([]byte(enc))
				if n != 1 {
					t.Fatalf("pre %d post %d: %d replacements in %q → %q", pre, post, n, enc, out)
				}
				// Characters made only of prefix bits stay, as do those
				// made only of suffix bits (and their padding).
				want := enc[:8*pre/6] + DefaultReplacement
				if post > 0 {
					want += enc[(8*(pre+len(secret))+5)/6:]
				}
				if string(out) != want {
					t.Fatalf("pre %d post %d of %q:\n got %q\nwant %q", pre, post, enc, out, want)
				}
			}
		}
	}
}

func TestPatternFormsPerEncoding(t *testing.T) {
	secret := []byte("a/b c+d&é")
	tests := []struct {
		enc  Encoding
		want []string
	}{
		{Raw, []string{"a/b c+d&é"}},
		{Hex, []string{"612f6220632b6426c3a9"}}, // matched in any case
		{UTF16, []string{"a\x00/\x00b\x00 \x00c\x00+\x00d\x00&\x00\xe9\x00", "\x00a\x00/\x00b\x00 \x00c\x00+\x00d\x00&\x00\xe9"}},
		{Percent, []string{
			"%61%2F%62%20%63%2B%64%26%C3%A9", "%61%2f%62%20%63%2b%64%26%c3%a9",
			"a%2Fb%20c%2Bd%26%C3%A9", "a%2fb%20c%2bd%26%c3%a9",
			"a%2Fb+c%2Bd%26%C3%A9", "a%2Fb%20c+d&%C3%A9",
		}},
		{JSON, []string{
			`a/b c+d&é`, `a/b c+d\u0026é`, `a\/b c+d&é`, `a/b c+d&\u00e9`,
			`\u0061\u002f\u0062\u0020\u0063\u002b\u0064\u0026\u00e9`,
			`\u0061\u002F\u0062\u0020\u0063\u002B\u0064\u0026\u00E9`,
		}},
	}
	for _, tt := range tests {
		var got []string
		for _, p := range patternsFor(secret, tt.enc) {
			got = append(got, string(p.core))
		}
		for _, w := range tt.want {
			found := false
			for _, g := range got {
				found = found || g == w
			}
			if !found {
				t.Errorf("encoding %d: form %q missing from %q", tt.enc, w, got)
			}
		}
	}
}

func TestEncodingSelection(t *testing.T) {
	secret := []byte("0123456789abcdef")
	r, err := New([][]byte{secret}, Options{Encodings: Hex, Replacement: "<gone>"})
	if err != nil {
		t.Fatal(err)
	}
	in := "raw " + string(secret) + " hex 30313233343536373839616263646566"
	out, n := r.Redact([]byte(in))
	if want := "raw " + string(secret) + " hex <gone>"; string(out) != want || n != 1 {
		t.Fatalf("got %q (%d), want %q", out, n, want)
	}
}

func TestNewRefusesUnsafeInput(t *testing.T) {
	short := []byte("hunter2")
	_, err := New([][]byte{[]byte("long enough secret"), short}, Options{})
	if err == nil {
		t.Fatal("a 7-byte secret was accepted")
	}
	if !strings.Contains(err.Error(), "secret #2") || strings.Contains(err.Error(), string(short)) {
		t.Fatalf("error must name the secret by position and never show it: %v", err)
	}
	_, err = New([][]byte{[]byte("REDACTED")}, Options{})
	if err == nil || strings.Contains(err.Error(), "REDACTED]") {
		t.Fatalf("a replacement containing the secret must be refused without echoing it: %v", err)
	}
	if _, err := New(nil, Options{Encodings: 1 << 7}); err == nil {
		t.Fatal("unknown encoding bits were accepted")
	}
}

func TestNoSecretsPassesThrough(t *testing.T) {
	r, err := New(nil, Options{})
	if err != nil {
		t.Fatal(err)
	}
	in := []byte("anything at all \x00\xff")
	var out bytes.Buffer
	w := r.NewWriter(&out)
	if _, err := w.Write(in); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(out.Bytes(), in) {
		t.Fatalf("without secrets a Write must pass everything on at once, got %q", out.Bytes())
	}
	if err := w.Close(); err != nil || !bytes.Equal(out.Bytes(), in) {
		t.Fatalf("Close: %v, output %q", err, out.Bytes())
	}
}

// TestNewKeepsNoReferenceToItsInput: the vault makes its memory unreadable
// the moment New returns, so a Redactor that kept the caller's slices would
// fault (a memory fault kills the process; it cannot be recovered). Wiping
// the input after New must change nothing the Redactor finds, in any form.
func TestNewKeepsNoReferenceToItsInput(t *testing.T) {
	in := make([][]byte, len(testSecrets))
	for i, s := range testSecrets {
		in[i] = bytes.Clone(s)
	}
	r, err := New(in, Options{})
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range in {
		for i := range s {
			s[i] = 0
		}
	}
	rng := rand.New(rand.NewPCG(2, 2))
	for _, e := range encoders() {
		for si, s := range testSecrets {
			enc := e.enc(rng, s)
			if out, n := r.Redact(enc); n == 0 {
				t.Errorf("after wiping New's input, secret #%d as %s is no longer found: %q", si+1, e.name, out)
			}
		}
	}
}
