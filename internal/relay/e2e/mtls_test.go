package e2e

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/slapenir/slapenir/internal/ollama/fake"
	"github.com/slapenir/slapenir/internal/pki/certfile"
	"github.com/slapenir/slapenir/internal/pki/devca"
	"github.com/slapenir/slapenir/internal/testutil/proxytest"
)

// startMTLSProxy runs the proxy with mTLS from a development CA and writes an
// agent certificate directory; it returns the proxy's URL and that directory.
func startMTLSProxy(t *testing.T) (string, certfile.Dir) {
	t.Helper()
	tlsOpts, ca := proxytest.DevMTLS(t, "agent-*")
	url := startProxy(t, tlsOpts)
	certs := certfile.Dir(filepath.Join(t.TempDir(), "certs"))
	if _, err := ca.IssueTo(certs, devca.Request{CommonName: "agent-1", Usage: devca.Client}); err != nil {
		t.Fatal(err)
	}
	return url, certs
}

// TestCommandsOverMTLS runs ollama-verify and the relay against the proxy's
// mTLS port with the agent's certificate directory, as in the container.
func TestCommandsOverMTLS(t *testing.T) {
	ctx := testContext(t)
	f := startFake(t, fake.Options{})
	proxyURL, certs := startMTLSProxy(t)
	base := env("SLAPENIR_PROXY_URL="+proxyURL, "OLLAMA_HOST="+strings.TrimPrefix(f.URL(), "http://"))

	out, code := run(t, ctx, base, "ollama-verify", "--certs", string(certs), "--strict")
	if code != 0 || !strings.Contains(out, "[ollama-verify] Proxy is healthy\n") ||
		!strings.Contains(out, "[ollama-verify] Ollama is reachable through proxy!\n") ||
		!strings.Contains(out, "[ollama-verify] Model qwen2.5-coder:7b is available\n") {
		t.Errorf("ollama-verify over mTLS: exit %d:\n%s", code, out)
	}

	d := startDaemon(t, base, "slapenir", "relay", "--certs", string(certs), "--listen", "127.0.0.1:0", "--ollama-listen", "127.0.0.1:0")
	forward := d.waitLine(t, forwardLine)[1]
	helper := d.waitLine(t, helperLine)[1]
	if out, code := run(t, ctx, env(), "curl", "-sS", "--fail", helper+"/api/tags"); code != 0 || !strings.Contains(out, fake.DefaultModel) {
		t.Errorf("curl through the helper over mTLS: exit %d: %s", code, out)
	}
	if out, code := run(t, ctx, env("http_proxy="+forward), "curl", "-sS", "--fail", f.URL()+"/api/version"); code != 0 || !strings.Contains(out, fake.Version) {
		t.Errorf("curl through the forward proxy over mTLS: exit %d: %s", code, out)
	}
}
