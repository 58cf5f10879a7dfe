package proxy

import (
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"

	"github.com/slapenir/slapenir/internal/audit"
)

// benchProxy starts an in-process proxy (audit to a real file) and a 1 KB
// upstream for the hot-path benchmarks.
func benchProxy(b *testing.B) (*testProxy, *httptest.Server) {
	b.Helper()
	payload := strings.Repeat("x", 1024)
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, payload) }))
	b.Cleanup(up.Close)
	cfg := loopbackConfig()
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
