// Package tunnel relays the bytes of a CONNECT tunnel both ways and keeps
// the open ones known, for the proxy (agent ↔ upstream) and the relay
// (tool ↔ proxy): one half-close rule, tested once.
//
// It owns copying, half-closing and cutting; it must not decide whether a
// tunnel may open, nor audit it.
package tunnel

import (
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// Drain is how long the far side may go on sending after the client's
// side has ended: enough for a server to answer a half-close (TLS
// close_notify, git's request-then-response), short enough that clients
// that come and go cannot keep tunnels open on far sides that never close
// (700 short-lived CONNECTs once held every proxy slot for its 5-minute
// idle timeout).
const Drain = 2 * time.Second

var buffers = sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}

// Pipe copies fromClient to far and fromFar to client until both end, and
// returns the bytes each way. The one rule, the same both ways: a side
// that ends (EOF) half-closes the other's write side, and the other
// direction then has Drain to finish before both are cut; an error either
// way cuts both at once, since nobody can read the rest.
//
// fromClient and fromFar are the connections' readers, which may hold
// bytes read ahead of the tunnel (a TLS ClientHello sent behind CONNECT,
// whatever the proxy sent after its 200). Both connections are closed when
// Pipe returns.
func Pipe(client net.Conn, fromClient io.Reader, far net.Conn, fromFar io.Reader) (toFar, toClient int64) {
	var once sync.Once
	cut := func() { once.Do(func() { _ = client.Close(); _ = far.Close() }) }
	var in, out atomic.Int64
	clientDone, farDone := make(chan struct{}), make(chan struct{})
	half := func(dst net.Conn, src io.Reader, n *atomic.Int64, done, other chan struct{}) {
		defer close(done)
		k, err := copyBuffer(dst, src)
		n.Store(k)
		if err != nil {
			cut()
			return
		}
		closeWrite(dst)
		t := time.NewTimer(Drain)
		defer t.Stop()
		select {
		case <-other:
		case <-t.C:
			cut()
		}
	}
	go half(far, fromClient, &in, clientDone, farDone)
	half(client, fromFar, &out, farDone, clientDone)
	<-clientDone
	cut()
	return in.Load(), out.Load()
}

func copyBuffer(dst io.Writer, src io.Reader) (int64, error) {
	buf := buffers.Get().(*[]byte)
	defer buffers.Put(buf)
	return io.CopyBuffer(dst, src, *buf)
}

// closeWrite half-closes c when it can, else closes it: a connection that
// cannot say "no more from me" must not leave its peer waiting.
func closeWrite(c net.Conn) {
	if cw, ok := c.(interface{ CloseWrite() error }); ok {
		_ = cw.CloseWrite()
		return
	}
	_ = c.Close()
}

// Registry keeps the open tunnels' connections, so a shutdown can wait
// for them and cut those still open. The zero value is ready.
type Registry struct {
	mu     sync.Mutex
	open   map[net.Conn]int // a connection → the tunnels holding it
	count  int
	closed bool
	wg     sync.WaitGroup
}

// Add counts one tunnel over conns; false once the registry is closed
// (the caller then closes conns and drops the tunnel).
func (r *Registry) Add(conns ...net.Conn) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return false
	}
	if r.open == nil {
		r.open = map[net.Conn]int{}
	}
	for _, c := range conns {
		r.open[c]++
	}
	r.count++
	r.wg.Add(1)
	return true
}

// Done is Add's end.
func (r *Registry) Done(conns ...net.Conn) {
	r.mu.Lock()
	for _, c := range conns {
		if r.open[c]--; r.open[c] <= 0 {
			delete(r.open, c)
		}
	}
	r.count--
	r.mu.Unlock()
	r.wg.Done()
}

// Open is how many tunnels are open.
func (r *Registry) Open() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.count
}

// Cut closes every open tunnel's connections; their Pipes then end.
func (r *Registry) Cut() {
	r.mu.Lock()
	defer r.mu.Unlock()
	for c := range r.open {
		_ = c.Close()
	}
}

// Close refuses new tunnels, cuts the open ones and waits until each has
// called Done.
func (r *Registry) Close() {
	r.mu.Lock()
	r.closed = true
	r.mu.Unlock()
	r.Cut()
	r.wg.Wait()
}
