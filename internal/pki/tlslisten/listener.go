package tlslisten

import (
	"bufio"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"sync"
	"time"
)

// recordTypeHandshake is the first byte of every TLS ClientHello.
const recordTypeHandshake = 0x16

// classifyTimeout bounds how long a new connection may stay silent before
// its first byte; it only guards against idle sockets piling up.
const classifyTimeout = 10 * time.Second

// DefaultAnswer is the body sent to a plaintext client.
const DefaultAnswer = "This port requires TLS with a client certificate (mTLS). " +
	"Use https:// and present a certificate from the configured CA (see `slapenir certs bootstrap` or `slapenir certs dev-issue`), " +
	"or send plain HTTP to the local relay instead.\n"

// Listener yields *tls.Conn for TLS clients and answers everyone else.
type Listener struct {
	inner  net.Listener
	cfg    *tls.Config
	answer []byte

	conns     chan net.Conn
	errc      chan error
	done      chan struct{}
	closeOnce sync.Once
}

// New starts classifying the connections of inner. answer is the body of the
// 400 response plaintext clients get; empty means DefaultAnswer.
func New(inner net.Listener, cfg *tls.Config, answer string) *Listener {
	if answer == "" {
		answer = DefaultAnswer
	}
	resp := fmt.Sprintf("HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s", len(answer), answer)
	l := &Listener{inner: inner, cfg: cfg, answer: []byte(resp), conns: make(chan net.Conn), errc: make(chan error, 1), done: make(chan struct{})}
	go l.acceptLoop()
	return l
}

func (l *Listener) acceptLoop() {
	for {
		c, err := l.inner.Accept()
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			select {
			case l.errc <- err:
			case <-l.done:
			}
			return
		}
		go l.classify(c)
	}
}

// classify peeks at the first byte: a TLS handshake record goes on to
// Accept, anything else gets the plaintext answer and is closed.
func (l *Listener) classify(c net.Conn) {
	c.SetReadDeadline(time.Now().Add(classifyTimeout))
	br := bufio.NewReaderSize(c, 1024)
	first, err := br.Peek(1)
	if err != nil {
		c.Close()
		return
	}
	c.SetReadDeadline(time.Time{})
	if first[0] != recordTypeHandshake {
		c.SetWriteDeadline(time.Now().Add(classifyTimeout))
		c.Write(l.answer)
		c.Close()
		return
	}
	tc := tls.Server(&peekedConn{Conn: c, r: br}, l.cfg)
	select {
	case l.conns <- tc:
	case <-l.done:
		c.Close()
	}
}

// Accept returns the next TLS connection (its handshake not yet done).
func (l *Listener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case err := <-l.errc:
		return nil, err
	case <-l.done:
		return nil, net.ErrClosed
	}
}

// Close stops accepting; connections already returned stay open.
func (l *Listener) Close() error {
	var err error
	l.closeOnce.Do(func() {
		close(l.done)
		err = l.inner.Close()
	})
	return err
}

// Addr is the inner listener's address.
func (l *Listener) Addr() net.Addr { return l.inner.Addr() }

// peekedConn replays the bytes read while classifying.
type peekedConn struct {
	net.Conn
	r *bufio.Reader
}

func (p *peekedConn) Read(b []byte) (int, error) { return p.r.Read(b) }
