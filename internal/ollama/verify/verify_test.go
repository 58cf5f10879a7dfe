package verify_test

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/slapenir/slapenir/internal/ollama/fake"
	"github.com/slapenir/slapenir/internal/ollama/verify"
	"github.com/slapenir/slapenir/internal/proxy"
	"github.com/slapenir/slapenir/internal/testutil/proxytest"
)

func testContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// startProxy runs the real proxy in plaintext with loopback upstreams allowed.
func startProxy(t *testing.T) *url.URL {
	t.Helper()
	u, err := url.Parse(proxytest.Start(t, proxy.Options{}, nil).URL)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

func startFake(t *testing.T, addr string, models ...string) *fake.Server {
	t.Helper()
	f, err := fake.Listen(addr, fake.Options{Models: models})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = f.Close() })
	return f
}

// freeAddr is a loopback address nothing listens on (yet).
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	_ = ln.Close()
	return addr
}

func check(t *testing.T, proxyURL *url.URL, target, model string, attempts int, out *syncBuffer) (verify.Result, error) {
	return verify.Run(testContext(t), verify.Config{
		Proxy: proxyURL, Transport: http.DefaultTransport, Target: target, Model: model,
		Attempts: attempts, Wait: time.Millisecond, Out: out,
	})
}

func TestModelAvailable(t *testing.T) {
	p := startProxy(t)
	f := startFake(t, "127.0.0.1:0", "qwen2.5-coder:7b", "llama3")
	for _, model := range []string{"qwen2.5-coder:7b", "llama3"} {
		var out syncBuffer
		res, err := check(t, p, f.URL(), model, 10, &out)
		if err != nil || !res.ProxyHealthy || !res.Reachable || !res.ModelAvailable || !res.Fake {
			t.Fatalf("model %s: %+v, %v\n%s", model, res, err, out.String())
		}
		want := strings.Join([]string{
			"[ollama-verify] Target: " + f.URL(),
			"[ollama-verify] Proxy: " + p.String(),
			"[ollama-verify] Model: " + model,
			"[ollama-verify] Proxy is healthy",
			"[ollama-verify] NOTE: this is SLAPENIR's built-in fake Ollama, not a real model: its answers are canned (start Ollama, or set OLLAMA_HOST, for a real one)",
			"[ollama-verify] Ollama is reachable through proxy!",
			"[ollama-verify] Model " + model + " is available",
		}, "\n") + "\n"
		if out.String() != want {
			t.Errorf("output:\n%s\nwant:\n%s", out.String(), want)
		}
	}
}

// An Ollama that is not the fake gets no note: only the fake's marker
// header says "canned".
func TestRealOllamaHasNoFakeNote(t *testing.T) {
	p := startProxy(t)
	real := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, `{"models":[{"name":"llama3:latest"}]}`)
	}))
	t.Cleanup(real.Close)
	var out syncBuffer
	res, err := check(t, p, real.URL, "llama3", 3, &out)
	if err != nil || res.Fake || !res.ModelAvailable {
		t.Fatalf("%+v, %v\n%s", res, err, out.String())
	}
	if strings.Contains(out.String(), "fake") {
		t.Errorf("a real Ollama was called a fake:\n%s", out.String())
	}
}

func TestModelMissing(t *testing.T) {
	p := startProxy(t)
	f := startFake(t, "127.0.0.1:0", "llama3")
	var out syncBuffer
	res, err := check(t, p, f.URL(), "qwen2.5-coder:7b", 10, &out)
	if err == nil || !res.Reachable || res.ModelAvailable {
		t.Fatalf("%+v, %v; want reachable, model missing, and an error", res, err)
	}
	for _, line := range []string{
		"[ollama-verify] Ollama is reachable through proxy!\n",
		"[ollama-verify] WARNING: Model qwen2.5-coder:7b is not available (Ollama has: llama3:latest)\n",
		"[ollama-verify] Pull it on the host with: ollama pull qwen2.5-coder:7b\n",
	} {
		if !strings.Contains(out.String(), line) {
			t.Errorf("output lacks %q:\n%s", line, out.String())
		}
	}
	if !strings.Contains(err.Error(), `"ollama pull qwen2.5-coder:7b"`) {
		t.Errorf("error %q does not say which pull to run", err)
	}
}

// TestRetriesUntilOllamaComesUp starts Ollama only once the second attempt
// has failed: the third must find it.
func TestRetriesUntilOllamaComesUp(t *testing.T) {
	p := startProxy(t)
	addr := freeAddr(t)
	var once sync.Once
	out := &syncBuffer{onWrite: func(s string) {
		if strings.Contains(s, "Attempt 2/10") {
			once.Do(func() { startFake(t, addr) })
		}
	}}
	res, err := check(t, p, "http://"+addr, fake.DefaultModel, 10, out)
	if err != nil || !res.ModelAvailable {
		t.Fatalf("%+v, %v\n%s", res, err, out.String())
	}
	s := out.String()
	if !strings.Contains(s, "[ollama-verify] Attempt 1/10: Ollama not reachable through proxy (502 Bad Gateway: proxy: upstream http://"+addr) ||
		strings.Contains(s, "Attempt 3/10") {
		t.Errorf("output:\n%s\nwant two failed attempts naming the proxy's 502, then success", s)
	}
}

func TestUnreachableAfterAllAttempts(t *testing.T) {
	p := startProxy(t)
	addr := freeAddr(t)
	var out syncBuffer
	res, err := check(t, p, "http://"+addr, fake.DefaultModel, 3, &out)
	if err == nil || res.Reachable {
		t.Fatalf("%+v, %v; want unreachable", res, err)
	}
	s := out.String()
	for _, want := range []string{"Attempt 1/3", "Attempt 2/3", "[ollama-verify] WARNING: Ollama is not reachable through proxy after 3 attempts"} {
		if !strings.Contains(s, want) {
			t.Errorf("output lacks %q:\n%s", want, s)
		}
	}
	if strings.Contains(s, "Attempt 3/3") || strings.Contains(s, "reachable through proxy!") {
		t.Errorf("output:\n%s\nwant no retry announced after the last attempt, and no success", s)
	}
}

func TestProxyDown(t *testing.T) {
	var out syncBuffer
	res, err := check(t, &url.URL{Scheme: "http", Host: freeAddr(t)}, "http://127.0.0.1:11434", fake.DefaultModel, 2, &out)
	if err == nil || res.ProxyHealthy || res.Reachable {
		t.Fatalf("%+v, %v; want the proxy unhealthy and Ollama unreachable", res, err)
	}
	if !strings.Contains(out.String(), "[ollama-verify] WARNING: proxy health check failed: dial tcp") {
		t.Errorf("output:\n%s\nwant the health check's failure", out.String())
	}
}

// syncBuffer is an io.Writer tests can read while the check writes, with a
// hook called on every write.
type syncBuffer struct {
	mu      sync.Mutex
	b       bytes.Buffer
	onWrite func(string)
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	n, err := s.b.Write(p)
	s.mu.Unlock()
	if s.onWrite != nil {
		s.onWrite(string(p))
	}
	return n, err
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
