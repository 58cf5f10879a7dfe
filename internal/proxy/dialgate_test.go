package proxy

import (
	"context"
	"crypto/tls"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httptrace"
	"sync/atomic"
	"testing"
	"time"
)

// fromAddr is an HTTP client of the proxy p whose connections come from the
// loopback address ip: another agent, as far as the per-client limits go
// (without a client certificate a client is its address).
func fromAddr(p *testProxy, ip string) *http.Client {
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}}
	return &http.Client{Transport: &http.Transport{Proxy: http.ProxyURL(p.url()), DialContext: d.DialContext}}
}

// TestOneAgentsSlowStreamsDoNotStarveItsRole: agent A holds its whole
// share of requests in flight (max_requests_per_identity, the default 256)
// on slow streams to one upstream host, as an agent waiting on a local LLM
// does; agent B, of the same role, asks the same host for something and is
// answered at once. A role-wide bound on upstream connections as large as
// one agent's share (http.Transport.MaxConnsPerHost) left B waiting for a
// connection forever.
func TestOneAgentsSlowStreamsDoNotStarveItsRole(t *testing.T) {
	var holding atomic.Int64
	hold := make(chan struct{})
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/fast" {
			io.WriteString(w, "fast")
			return
		}
		holding.Add(1)
		defer holding.Add(-1)
		select {
		case <-hold:
		case <-r.Context().Done():
		}
	}))
	t.Cleanup(up.Close)
	t.Cleanup(func() { close(hold) })
	cfg := loopbackConfig()
	share := cfg.Limits.MaxRequestsPerIdentity
	p := startProxy(t, cfg)

	a := fromAddr(p, "127.0.0.1")
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	for range share {
		req, _ := http.NewRequestWithContext(ctx, "GET", up.URL+"/slow", nil)
		go func() {
			if resp, err := a.Do(req); err == nil {
				resp.Body.Close()
			}
		}()
	}
	waitFor(t, "agent A's streams to reach the upstream", func() bool { return holding.Load() == int64(share) })

	b := fromAddr(p, "127.0.0.2")
	b.Timeout = 5 * time.Second
	resp, err := b.Get(up.URL + "/fast")
	if err != nil {
		t.Fatalf("agent B, while agent A holds %d slow streams to the same host: %v", share, err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || string(body) != "fast" {
		t.Fatalf("agent B: %d %q", resp.StatusCode, body)
	}
}

// TestDialGateBoundsDialsPerClientAndHost: one client's dials to one host
// past maxDialsPerUpstream wait, and leave as soon as their request ends;
// another client and another host have slots of their own; a slot held
// for a TLS handshake comes back when the handshake ends.
func TestDialGateBoundsDialsPerClientAndHost(t *testing.T) {
	var g dialGate
	var cur, peak atomic.Int64
	block := make(chan struct{})
	slowDial := func() (net.Conn, error) {
		n := cur.Add(1)
		defer cur.Add(-1)
		for p := peak.Load(); n > p && !peak.CompareAndSwap(p, n); p = peak.Load() {
		}
		<-block
		return nil, io.EOF
	}
	alive, end := context.WithCancel(context.Background())
	a := g.track(context.Background(), &exchange{who: "a", ctx: alive}, false)
	errs := make(chan error, 3*maxDialsPerUpstream)
	for range 3 * maxDialsPerUpstream {
		go func() { _, err := g.dial(a, "h:443", slowDial); errs <- err }()
	}
	waitFor(t, "the first dials", func() bool { return cur.Load() == maxDialsPerUpstream })
	// Another client, and the same client to another host, are not held up.
	fast := func() (net.Conn, error) { return nil, nil }
	b := g.track(context.Background(), &exchange{who: "b", ctx: context.Background()}, false)
	for _, c := range []struct {
		ctx  context.Context
		addr string
	}{{b, "h:443"}, {a, "other:443"}} {
		done := make(chan struct{})
		go func() { g.dial(c.ctx, c.addr, fast); close(done) }()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			t.Fatalf("a dial to %s waited for another client's or host's slots", c.addr)
		}
	}
	// The request ends: the dials waiting leave at once, those dialling
	// finish.
	end()
	for range 2 * maxDialsPerUpstream {
		select {
		case err := <-errs:
			if err == nil || err == io.EOF {
				t.Fatalf("a waiting dial of an ended request: %v", err)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("the dials waiting did not leave when their request ended")
		}
	}
	close(block)
	for range maxDialsPerUpstream {
		<-errs
	}
	if p := peak.Load(); p != maxDialsPerUpstream {
		t.Fatalf("%d dials at once, want %d", p, maxDialsPerUpstream)
	}

	// A TLS dial holds its slot until the handshake ends.
	tlsCtx := g.track(context.Background(), &exchange{who: "c", ctx: context.Background()}, true)
	for range maxDialsPerUpstream {
		if _, err := g.dial(tlsCtx, "h:443", fast); err != nil {
			t.Fatal(err)
		}
	}
	waitCtx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	waiting := g.track(context.Background(), &exchange{who: "c", ctx: waitCtx}, true)
	if _, err := g.dial(waiting, "h:443", fast); err == nil {
		t.Fatal("a dial got a slot while every one was held by a TLS handshake")
	}
	httptraceDone(tlsCtx)
	if _, err := g.dial(tlsCtx, "h:443", fast); err != nil {
		t.Fatalf("after a handshake ended: %v", err)
	}
	if n := len(g.slots); n != 1 {
		t.Fatalf("%d gate entries, want only the one still held", n)
	}
}

// httptraceDone ends a TLS handshake as net/http reports it, to the trace
// of the request's context.
func httptraceDone(ctx context.Context) {
	httptrace.ContextClientTrace(ctx).TLSHandshakeDone(tls.ConnectionState{}, nil)
}
