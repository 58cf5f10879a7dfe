package e2e

import (
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/slapenir/slapenir/internal/ollama/fake"
)

var (
	forwardLine = regexp.MustCompile(`forward proxy .* listening on (http://\S+)`)
	helperLine  = regexp.MustCompile(`Ollama helper .* listening on (http://\S+)`)
)

// TestRelayCommand runs "slapenir relay" and uses both listeners with curl,
// as tools inside the agent do, then stops it as the init would.
func TestRelayCommand(t *testing.T) {
	ctx := testContext(t)
	f := startFake(t, fake.Options{})
	proxyURL := startProxy(t, nil)
	d := startDaemon(t, env("HOME="+t.TempDir()), "slapenir", "relay",
		"--proxy", proxyURL, "--listen", "127.0.0.1:0", "--ollama-listen", "127.0.0.1:0",
		"--ollama-host", strings.TrimPrefix(f.URL(), "http://"))
	forward := d.waitLine(t, forwardLine)[1]
	helper := d.waitLine(t, helperLine)[1]

	out, code := run(t, ctx, env("http_proxy="+forward), "curl", "-sS", "--fail", f.URL()+"/api/version")
	if code != 0 || !strings.Contains(out, fake.Version) {
		t.Errorf("curl through the relay's forward proxy: exit %d: %s", code, out)
	}
	out, code = run(t, ctx, env(), "curl", "-sS", "--fail", "-N", helper+"/api/chat",
		"-d", `{"model":"qwen2.5-coder:7b","messages":[{"role":"user","content":"hi"}]}`)
	if code != 0 || strings.Count(out, "\n") != 10 || !strings.Contains(out, `"done":true`) {
		t.Errorf("curl /api/chat through the helper: exit %d, want 9 token lines and a done line:\n%s", code, out)
	}
	// SIGHUP (forwarded by the init after a renewal) must not stop it.
	_ = d.cmd.Process.Signal(syscall.SIGHUP)
	d.waitLine(t, regexp.MustCompile(`SIGHUP: new connections`))
	out, code = run(t, ctx, env(), "curl", "-sS", "--fail", helper+"/api/tags")
	if code != 0 || !strings.Contains(out, fake.DefaultModel) {
		t.Errorf("curl through the helper after SIGHUP: exit %d: %s", code, out)
	}
	if code := d.stop(t); code != 0 {
		t.Errorf("relay exited %d on SIGTERM, want 0 (a clean stop)", code)
	}
}

// TestOllamaProxyHelperAlias is the seed's Option C and its "Test 3":
// ollama-proxy-helper PORT, then curl localhost:PORT/api/tags.
func TestOllamaProxyHelperAlias(t *testing.T) {
	ctx := testContext(t)
	f := startFake(t, fake.Options{})
	proxyURL := startProxy(t, nil)
	port := strconv.Itoa(freePort(t))
	d := startDaemon(t, env("SLAPENIR_PROXY_URL="+proxyURL, "OLLAMA_HOST="+strings.TrimPrefix(f.URL(), "http://"), "OLLAMA_PROXY_PORT=1"),
		"ollama-proxy-helper", port)
	if got := d.waitLine(t, helperLine)[1]; got != "http://127.0.0.1:"+port {
		t.Fatalf("helper listens on %s, want the PORT argument %s over OLLAMA_PROXY_PORT", got, port)
	}
	out, code := run(t, ctx, env(), "curl", "-sS", "--fail", "http://localhost:"+port+"/api/tags")
	if code != 0 || !strings.Contains(out, fake.DefaultModel) {
		t.Errorf("curl http://localhost:%s/api/tags: exit %d: %s", port, code, out)
	}
	if strings.Contains(strings.Join(func() []string {
		var s []string
		for _, r := range f.Requests() {
			s = append(s, r.Origin)
		}
		return s
	}(), ""), "http") {
		t.Error("an Origin header reached Ollama")
	}
}

func TestRelayRefusesToStartWithoutCertificates(t *testing.T) {
	ctx := testContext(t)
	out, code := run(t, ctx, env(), "slapenir", "relay", "--proxy", "https://127.0.0.1:1", "--certs", t.TempDir())
	if code != 1 || !strings.Contains(out, "certs bootstrap") {
		t.Errorf("relay without certificates: exit %d: %s; want 1 and how to get them", code, out)
	}
}
