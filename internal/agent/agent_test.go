package agent

import (
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/slapenir/slapenir/internal/testutil/syncbuf"
)

func TestMask(t *testing.T) {
	for in, want := range map[string]string{
		"sk-proj-DUMMY-placeholder": "sk-proj-...",
		"12345678":                  "***",
		"123456789":                 "12345678...",
	} {
		if got := Mask(in); got != want {
			t.Errorf("Mask(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestAgentReportsChecksHealthBeatsAndStops(t *testing.T) {
	var hits int
	var mu sync.Mutex
	proxy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/health" {
			// /placeholders too: the report falls back to the seed's
			// names.
			http.NotFound(w, r)
			return
		}
		mu.Lock()
		hits++
		mu.Unlock()
		w.Write([]byte("OK"))
	}))
	defer proxy.Close()
	certs := t.TempDir()
	cert := filepath.Join(certs, "cert.pem")
	if err := os.WriteFile(cert, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{
		"OPENAI_API_KEY":     "sk-proj-PLACEHOLDER-0000000000",
		"ANTHROPIC_API_KEY":  "short",
		"HTTP_PROXY":         "http://127.0.0.1:3128",
		"SLAPENIR_CERTS_DIR": certs, // has cert.pem, lacks key.pem
		"SLAPENIR_PROXY_URL": proxy.URL,
	}
	out := &syncbuf.Buffer{}
	stop := make(chan os.Signal, 1)
	done := make(chan int, 1)
	go func() {
		done <- Run(Config{Out: out, Getenv: func(k string) string { return env[k] }, Interval: 10 * time.Millisecond, Stop: stop})
	}()
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(out.String(), "Heartbeat #3 ") {
		if time.Now().After(deadline) {
			t.Fatalf("no third heartbeat within 10s; output:\n%s", out)
		}
		time.Sleep(5 * time.Millisecond)
	}
	stop <- syscall.SIGTERM
	select {
	case code := <-done:
		if code != 0 {
			t.Errorf("exit code %d, want 0", code)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("agent did not stop within 10s of SIGTERM")
	}
	got := out.String()
	for _, want := range []string{
		"[INFO] SLAPENIR Agent Starting",
		"[WARNING] Cannot ask the proxy which placeholders this agent holds (GET " + proxy.URL + "/placeholders: 404 Not Found",
		"[INFO]   ✓ OPENAI_API_KEY: sk-proj-...",
		"[INFO]   ✓ ANTHROPIC_API_KEY: ***",
		"[WARNING]   ✗ IBM_API_KEY: Not set",
		"[INFO] HTTP_PROXY: http://127.0.0.1:3128",
		"[WARNING] HTTPS_PROXY not set",
		"[INFO] Client certificate found: " + cert,
		"[WARNING] Client key not found: " + filepath.Join(certs, "key.pem"),
		"[INFO] Testing proxy health at: " + proxy.URL + "/health",
		"[INFO] ✓ Proxy health check passed: OK",
		"[INFO] Heartbeat #1 - Agent is running",
		"[INFO] Received signal terminated, initiating graceful shutdown...",
		"[INFO] SLAPENIR Agent Shutting Down",
		"[INFO] Total heartbeats: ",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("output lacks %q; output:\n%s", want, got)
		}
	}
	if strings.Contains(got, "PLACEHOLDER") {
		t.Errorf("credential shown beyond 8 characters:\n%s", got)
	}
	mu.Lock()
	defer mu.Unlock()
	if hits != 1 {
		t.Errorf("proxy /health hit %d times, want 1", hits)
	}
}

func TestAgentGoesOnWhenProxyIsDown(t *testing.T) {
	down := httptest.NewServer(http.NotFoundHandler())
	url := down.URL
	down.Close()
	out := &syncbuf.Buffer{}
	stop := make(chan os.Signal, 1)
	stop <- syscall.SIGINT
	code := Run(Config{Out: out, Getenv: func(string) string { return "" }, Stop: stop, HealthURL: url + "/health"})
	if code != 0 {
		t.Errorf("exit code %d, want 0", code)
	}
	for _, want := range []string{"Proxy health check error:", "Proxy health check failed, but continuing anyway", "Total heartbeats: 1"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q; output:\n%s", want, out)
		}
	}
}
