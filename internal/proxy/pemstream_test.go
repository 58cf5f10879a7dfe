package proxy

import (
	"bytes"
	"fmt"
	"strconv"
	"strings"
	"testing"

	"github.com/slapenir/slapenir/internal/secrets"
)

// TestSSEStreamsWithAPEMKeyInTheVault: the vault takes multi-line values
// (file:, quoted dotenv values). Searched for whole, a PEM key put line
// breaks in the redactor's held set with a window of ~19 KB, and an LLM's
// SSE stream reached the agent only once that much had piled up (§4.4). It
// is searched for line by line now: each event arrives at once, and the key
// echoed back is still redacted.
func TestSSEStreamsWithAPEMKeyInTheVault(t *testing.T) {
	pem := "-----BEGIN PRIVATE KEY-----\n" +
		strings.Repeat("MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7VJTUt9Us8cKj\n", 26) +
		"-----END PRIVATE KEY-----\n"
	_, creds := vaultCredentials(t, secrets.CredentialConfig{Name: "github", Env: "GITHUB_TOKEN", Hosts: []string{"api.github.com"}}, pem, nil)
	p := startProxyOpts(t, loopbackConfig(), Options{Credentials: creds})
	event := []byte("data: {\"choices\":[{\"delta\":{\"content\":\"Hello\"}}]}\n\n")
	chunks := [][]byte{event, event, event}
	want := []int{len(event), 2 * len(event), 3 * len(event)}
	trace, _ := observe(t, p, "Content-Type: text/event-stream\r\n", chunks, 1, want)
	if !equalInts(trace, want[:len(trace)]) || len(trace) != len(want) {
		t.Errorf("SSE events through a proxy whose vault holds a PEM key: the agent had %v bytes after each event, want %v", trace, want)
	}
	echo := [][]byte{[]byte("data: " + pem[:100]), []byte(pem[100:] + "\n\n")}
	want = expectedTrace(t, creds, echo)
	trace, body := observe(t, p, "Content-Type: text/event-stream\r\n", echo, 2, want)
	if !equalInts(trace, want) {
		t.Fatalf("the PEM key echoed back: the agent had %v bytes after each chunk, the redactor releases %v", trace, want)
	}
	if bytes.Contains(body, []byte(pem[28:92])) || !bytes.Contains(body, []byte("-----BEGIN PRIVATE KEY-----\n[REDACTED]\n")) {
		t.Errorf("the PEM key echoed back: the agent got %.200q", body)
	}
}

// TestSecretsWithLiteralEscapeBytesAreRedacted: a vault value holding an
// escape byte that starts no escape ("%zz", "&jerry", `\q`), sent back by a
// hostile upstream with a later character escaped, passed to the agent
// whole; through the real Server, with the value loaded by the vault, it is
// redacted in every framing.
func TestSecretsWithLiteralEscapeBytesAreRedacted(t *testing.T) {
	for _, c := range []struct{ secret, form string }{
		{"pa%zz-word-12345", "pa%zz-word-1234%35"},
		{"tom&jerry-secret1", "<p>tom&jerry-secret&#x31;</p>"},
		{`C:\qtemp-key-0001`, `{"k":"C:\qtemp-key-000\u0031"}`},
	} {
		_, creds := vaultCredentials(t, secrets.CredentialConfig{Name: "github", Env: "GITHUB_TOKEN", Hosts: []string{"api.github.com"}}, c.secret, nil)
		p := startProxyOpts(t, loopbackConfig(), Options{Credentials: creds})
		up := newRawUpstream(t)
		for _, resp := range []string{
			"HTTP/1.1 200 OK\r\nContent-Length: " + strconv.Itoa(len(c.form)) + "\r\n\r\n" + c.form,
			"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + fmt.Sprintf("%x\r\n%s\r\n0\r\n\r\n", len(c.form), c.form),
		} {
			up.answer(resp[:len(resp)-7], resp[len(resp)-7:])
			raw := throughProxy(t, p, up, modeForward)
			if strings.Contains(raw, c.secret[:9]) || !strings.Contains(raw, "[REDACTED]") {
				t.Errorf("secret %q echoed as %q: the agent got %q", c.secret, c.form, raw)
			}
		}
	}
}
