package proxy

import (
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"

	"github.com/slapenir/slapenir/internal/audit"
	"github.com/slapenir/slapenir/internal/config"
	"github.com/slapenir/slapenir/internal/secrets"
)

// benchProxy starts an in-process proxy (audit to a real file) and a 1 KB
// upstream for the hot-path benchmarks.
func benchProxy(b *testing.B) (*testProxy, *httptest.Server) {
	return benchProxyWith(b, func(*config.Config) {})
}

// benchProxyWith is benchProxy with the configuration changed by configure.
func benchProxyWith(b *testing.B, configure func(*config.Config)) (*testProxy, *httptest.Server) {
	b.Helper()
	payload := strings.Repeat("x", 1024)
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		io.WriteString(w, payload)
	}))
	b.Cleanup(up.Close)
	cfg := loopbackConfig()
	configure(cfg)
	af := filepath.Join(b.TempDir(), "audit.jsonl")
	al, err := audit.Open(audit.Options{File: af})
	if err != nil {
		b.Fatal(err)
	}
	srv, err := New(Options{Config: cfg, Audit: al})
	if err != nil {
		b.Fatal(err)
	}
	ln := listenLoopback(b)
	go func() { _ = srv.Serve(ln) }()
	b.Cleanup(func() { _ = srv.http.Close(); _ = al.Close() })
	return &testProxy{srv: srv, addr: ln.Addr().String(), auditFile: af, audit: al}, up
}

func benchRequests(b *testing.B, c *http.Client, mk func() *http.Request) {
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			resp, err := c.Do(mk())
			if err != nil {
				b.Fatal(err)
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
	})
}

func BenchmarkDirect(b *testing.B) {
	_, up := benchProxy(b)
	c := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	benchRequests(b, c, func() *http.Request { r, _ := http.NewRequest("GET", up.URL+"/", nil); return r })
}

func BenchmarkForward(b *testing.B) {
	p, up := benchProxy(b)
	c := p.client()
	c.Transport.(*http.Transport).MaxIdleConnsPerHost = 64
	benchRequests(b, c, func() *http.Request { r, _ := http.NewRequest("GET", up.URL+"/", nil); return r })
}

func BenchmarkTarget(b *testing.B) {
	p, up := benchProxy(b)
	c := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	benchRequests(b, c, func() *http.Request {
		r, _ := http.NewRequest("GET", "http://"+p.addr+"/", nil)
		r.Header.Set("X-Target-URL", up.URL)
		return r
	})
}

// prompt is a request an agent sends an LLM: a 4 KiB JSON body of code
// and prose, with the headers a client library adds.
func prompt(url string) *http.Request {
	body := `{"model":"qwen2.5-coder","stream":true,"messages":[{"role":"user","content":"` +
		strings.Repeat(`func (s *Server) handle(w http.ResponseWriter, r *http.Request) { token := r.Header.Get(\"Authorization\"); if token == \"\" { return } } // fix the auth check\n`, 28) + `"}]}`
	r, _ := http.NewRequest("POST", url, strings.NewReader(body))
	r.Header.Set("Content-Type", "application/json")
	r.Header.Set("Authorization", "Bearer DUMMY_OPENAI_KEY")
	r.Header.Set("User-Agent", "aider/0.86 litellm/1.74")
	r.Header.Set("Accept", "application/json")
	return r
}

// BenchmarkForwardPrompt and BenchmarkForwardPromptDLP are the cost of
// outbound scanning on the request path: the same 4 KiB prompt with dlp
// off and enforced.
func BenchmarkForwardPrompt(b *testing.B) {
	benchPrompt(b, config.DLPOff)
}

func BenchmarkForwardPromptDLP(b *testing.B) {
	benchPrompt(b, config.DLPEnforce)
}

func benchPrompt(b *testing.B, mode string) {
	p, up := benchProxyWith(b, func(c *config.Config) { c.DLP.Mode = mode })
	c := p.client()
	c.Transport.(*http.Transport).MaxIdleConnsPerHost = 64
	b.SetBytes(int64(prompt(up.URL).ContentLength))
	benchRequests(b, c, func() *http.Request { return prompt(up.URL + "/v1/chat/completions") })
}

// benchCredProxy is benchProxy with one credential configured for the
// upstream's host, so every request is injected into and every response
// scanned.
func benchCredProxy(b *testing.B, handler http.Handler) (*testProxy, *httptest.Server) {
	b.Helper()
	up := httptest.NewServer(handler)
	b.Cleanup(up.Close)
	_, creds := vaultCredentials(b, secrets.CredentialConfig{Name: "github", Env: "GITHUB_TOKEN", Hosts: []string{"127.0.0.1"}, PlaintextHTTP: true}, realToken, nil)
	af := filepath.Join(b.TempDir(), "audit.jsonl")
	al, err := audit.Open(audit.Options{File: af})
	if err != nil {
		b.Fatal(err)
	}
	srv, err := New(Options{Config: loopbackConfig(), Audit: al, Credentials: creds})
	if err != nil {
		b.Fatal(err)
	}
	ln := listenLoopback(b)
	go func() { _ = srv.Serve(ln) }()
	b.Cleanup(func() { _ = srv.http.Close(); _ = al.Close() })
	return &testProxy{srv: srv, addr: ln.Addr().String(), auditFile: af, audit: al}, up
}

// BenchmarkForwardCredentials is BenchmarkForward with injection (a
// placeholder in the Authorization header) and redaction of the response on.
func BenchmarkForwardCredentials(b *testing.B) {
	payload := strings.Repeat("x", 1024)
	p, up := benchCredProxy(b, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, payload) }))
	c := p.client()
	c.Transport.(*http.Transport).MaxIdleConnsPerHost = 64
	benchRequests(b, c, func() *http.Request {
		r, _ := http.NewRequest("GET", up.URL+"/", nil)
		r.Header.Set("Authorization", "Bearer DUMMY_GITHUB")
		return r
	})
}

// BenchmarkStream64MiB measures throughput of one large response through the
// proxy, with the credential stage off and on (every byte scanned).
func BenchmarkStream64MiB(b *testing.B) {
	const size = 64 << 20
	big := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		chunk := []byte(strings.Repeat("lorem ipsum dolor sit amet, consectetur adipiscing elit\n", 1024))
		for sent := 0; sent < size; sent += len(chunk) {
			w.Write(chunk)
		}
	})
	run := func(b *testing.B, p *testProxy, url string) {
		c := p.client()
		b.SetBytes(size)
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			resp, err := c.Get(url)
			if err != nil {
				b.Fatal(err)
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
	}
	b.Run("plain", func(b *testing.B) {
		p, _ := benchProxy(b)
		up := httptest.NewServer(big)
		defer up.Close()
		run(b, p, up.URL)
	})
	b.Run("credentials", func(b *testing.B) {
		p, up := benchCredProxy(b, big)
		run(b, p, up.URL)
	})
}
