package proxy

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"net/http/httptrace"
	"sync"
)

// maxDialsPerUpstream bounds one client's connections being opened to one
// upstream host at once: from the TCP connect to the end of the TLS
// handshake. net/http does not cancel a dial when the request that started
// it is cancelled (it finishes it for the idle pool), so an agent that opens
// requests and resets each at once (CVE-2023-44487, from inside an
// intercepted HTTP/2 tunnel, or by dropping HTTP/1 connections) would
// otherwise keep starting TLS handshakes upstream faster than they end:
// thousands in flight from a tunnel whose own handlers never number more
// than innerMaxStreams. The bound is per client, not per role: a role-wide
// one (http.Transport.MaxConnsPerHost) lets one agent holding slow streams
// to a shared host (Ollama, an LLM API) use it up, and every other agent of
// the role then waits for a connection forever (there is no
// ResponseHeaderTimeout, by design). 32 is more than the tools agents run
// open at once to one host (npm's 15 sockets, a browser's 6); a burst past
// it waits for its own earlier dials, never for another agent's.
const maxDialsPerUpstream = 32

// dialGate bounds the upstream dials in flight per client and address.
// A dial past the bound waits for a slot only while its request is alive:
// a reset request's dial leaves at once, so what waits is bounded by the
// client's requests in flight, and what dials by maxDialsPerUpstream.
type dialGate struct {
	mu    sync.Mutex
	slots map[string]*dialSlots // by client key and address
}

type dialSlots struct {
	sem chan struct{}
	// users are the dials holding or waiting for a slot; the entry is
	// forgotten when none is left.
	users int
}

// requestDials is what the gate knows of one request: whose it is, while
// when it is alive, and the slots its dials hold until their TLS handshake
// ends.
type requestDials struct {
	who   string
	alive context.Context
	tls   bool // a TLS handshake follows each dial
	mu    sync.Mutex
	held  []func()
}

type requestDialsKey struct{}

// track makes the dials of x's upstream request go through the gate. The
// transport dials with a context that keeps the request's values (not its
// cancellation), and reports the end of the TLS handshake that follows a
// dial to the request's ClientTrace, where the slot is given back.
func (g *dialGate) track(ctx context.Context, x *exchange, tlsFollows bool) context.Context {
	d := &requestDials{who: x.who, alive: x.ctx, tls: tlsFollows}
	ctx = context.WithValue(ctx, requestDialsKey{}, d)
	if !tlsFollows {
		return ctx
	}
	return httptrace.WithClientTrace(ctx, &httptrace.ClientTrace{
		// Called once per handshake, whether it succeeded, failed or
		// timed out (net/http's addTLS).
		TLSHandshakeDone: func(tls.ConnectionState, error) { d.handshakeDone() },
	})
}

func (d *requestDials) hold(release func()) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.held = append(d.held, release)
}

// handshakeDone gives back a slot held by one of the request's dials. Two
// dials of one request (a retry while the first is still being opened) hold
// slots of the same client and address, so which one is given back does not
// matter.
func (d *requestDials) handshakeDone() {
	d.mu.Lock()
	var release func()
	if n := len(d.held); n > 0 {
		release, d.held = d.held[n-1], d.held[:n-1]
	}
	d.mu.Unlock()
	if release != nil {
		release()
	}
}

// dial runs dial in a slot of the request's client for addr. Every request
// reaches the transport through forward, which tracks it; an untracked
// context is dialled as it is.
func (g *dialGate) dial(ctx context.Context, addr string, dial func() (net.Conn, error)) (net.Conn, error) {
	d, _ := ctx.Value(requestDialsKey{}).(*requestDials)
	if d == nil {
		return dial()
	}
	release, err := g.enter(d.alive, d.who+" "+addr)
	if err != nil {
		return nil, fmt.Errorf("proxy: the request ended while waiting to connect to %s (this client already has %d connections to it being opened): %w", addr, maxDialsPerUpstream, err)
	}
	c, err := dial()
	if err != nil || !d.tls {
		release()
		return c, err
	}
	// net/http reports the end of every handshake it starts (addTLS, on
	// success, failure and timeout alike), which gives the slot back.
	d.hold(release)
	return c, nil
}

// enter takes a slot of key, waiting until alive is done; the function it
// returns gives the slot back.
func (g *dialGate) enter(alive context.Context, key string) (func(), error) {
	g.mu.Lock()
	if g.slots == nil {
		g.slots = map[string]*dialSlots{}
	}
	s := g.slots[key]
	if s == nil {
		s = &dialSlots{sem: make(chan struct{}, maxDialsPerUpstream)}
		g.slots[key] = s
	}
	s.users++
	g.mu.Unlock()
	select {
	case s.sem <- struct{}{}:
		// Called once: by dial, or by handshakeDone, which pops it.
		return func() {
			<-s.sem
			g.leave(key, s)
		}, nil
	case <-alive.Done():
		g.leave(key, s)
		return nil, context.Cause(alive)
	}
}

func (g *dialGate) leave(key string, s *dialSlots) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if s.users--; s.users == 0 {
		delete(g.slots, key)
	}
}
