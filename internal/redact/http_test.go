package redact

import (
	"bufio"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestStreamsThroughReverseProxy wires a Reader into a real
// httputil.ReverseProxy on loopback, the way the proxy does, in front of an
// upstream that streams NDJSON and waits for the client to have each line
// before sending the next. If the redactor held a complete line back, the
// exchange would stall; the deadline turns that into a failure instead of a
// hang. Every line leaks the secret, split across two flushes.
func TestStreamsThroughReverseProxy(t *testing.T) {
	const secret = "ghp_SECRETTOKEN42xyz"
	r := mustNew(t, secret)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	got := make(chan struct{})
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		w.Header().Set("Content-Type", "application/x-ndjson")
		f := w.(http.Flusher)
		for i := 0; i < 5; i++ {
			w.Write([]byte(`{"n":` + strconv.Itoa(i) + `,"token":"` + secret[:7]))
			f.Flush()
			w.Write([]byte(secret[7:] + `","done":` + strconv.FormatBool(i == 4) + "}\n"))
			f.Flush()
			select {
			case <-got:
			case <-req.Context().Done():
				return
			}
		}
	}))
	defer upstream.Close()
	target, _ := url.Parse(upstream.URL)

	counts := make(chan int, 1)
	rp := httputil.NewSingleHostReverseProxy(target)
	rp.FlushInterval = -1
	rp.ModifyResponse = func(resp *http.Response) error {
		resp.Body = &redactedBody{Reader: r.NewReader(resp.Body), orig: resp.Body, counts: counts}
		return nil
	}
	front := httptest.NewServer(rp)
	defer front.Close()

	req, _ := http.NewRequestWithContext(ctx, "GET", front.URL+"/api/chat", nil)
	resp, err := front.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	lines := bufio.NewScanner(resp.Body)
	for i := 0; i < 5; i++ {
		if !lines.Scan() {
			t.Fatalf("stream ended or stalled before line %d: %v", i, lines.Err())
		}
		want := `{"n":` + strconv.Itoa(i) + `,"token":"[REDACTED]","done":` + strconv.FormatBool(i == 4) + "}"
		if lines.Text() != want {
			t.Fatalf("line %d = %q, want %q", i, lines.Text(), want)
		}
		if strings.Contains(lines.Text(), secret[:7]) {
			t.Fatalf("line %d leaks a secret prefix", i)
		}
		got <- struct{}{}
	}
	if _, err := io.Copy(io.Discard, resp.Body); err != nil {
		t.Fatal(err)
	}
	if n := <-counts; n != 5 {
		t.Fatalf("Count() = %d, want 5", n)
	}
}

// redactedBody is how a proxy swaps a response body for its redacted form and
// reads the count for the audit record once the body is done.
type redactedBody struct {
	*Reader
	orig   io.Closer
	counts chan<- int
}

func (b *redactedBody) Close() error {
	b.counts <- b.Count()
	return b.orig.Close()
}
