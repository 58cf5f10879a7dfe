package proxy

import (
	"bytes"
	"context"
	"net"
	"strconv"
	"sync"
)

// net/http answers malformed requests (bad request line, oversized headers,
// conflicting Content-Length, unknown Transfer-Encoding…) itself, before any
// handler runs, with a plain-text reply and no hook. Such refusals must still be
// audited and explained, so every accepted connection is wrapped in a guardConn:
// outside a handler, a write in the exact form of net/http's rejections is
// one; the guard rewrites it into the proxy's JSON error shape and reports it.
type guardConn struct {
	net.Conn
	onReject     func(g *guardConn, status int, detail string, head []byte)
	onTLSFailure func(g *guardConn, reason, detail string)
	// tls is set on the mTLS port; Conn is then the *tls.Conn.
	tls *tlsState

	mu        sync.Mutex
	inHandler bool
	// head keeps the first bytes read since the last handler ended, so a
	// rejection can say which request line it refused.
	head []byte
	// dead connections failed their TLS handshake: net/http's attempt to
	// answer them in HTTP over the broken TLS is dropped.
	dead bool
	// clMatch is how much of "content-length:" the current header line
	// has matched from its start (-1: it is some other line); sawCL says a
	// Content-Length line came in the head being read. net/http drops that
	// header when the request is chunked, so only the raw bytes tell.
	clMatch int
	sawCL   bool
}

const clHeader = "content-length:"

// scanHead notes a Content-Length line in request-head bytes.
func (g *guardConn) scanHead(p []byte) {
	for _, c := range p {
		switch {
		case c == '\n':
			g.clMatch = 0
		case g.clMatch >= 0 && lowerASCII(c) == clHeader[g.clMatch]:
			if g.clMatch++; g.clMatch == len(clHeader) {
				g.sawCL, g.clMatch = true, -1
			}
		default:
			g.clMatch = -1
		}
	}
}

func lowerASCII(c byte) byte {
	if 'A' <= c && c <= 'Z' {
		return c + 'a' - 'A'
	}
	return c
}

const guardHeadKeep = 512

type guardKey struct{}

func (g *guardConn) Read(p []byte) (int, error) {
	if g.tls != nil && !g.tls.done {
		if err := g.handshake(); err != nil {
			return 0, err
		}
	}
	n, err := g.Conn.Read(p)
	if n > 0 {
		g.mu.Lock()
		if !g.inHandler {
			if len(g.head) < guardHeadKeep {
				g.head = append(g.head, p[:min(n, guardHeadKeep-len(g.head))]...)
			}
			g.scanHead(p[:n])
		}
		g.mu.Unlock()
	}
	return n, err
}

func (g *guardConn) Write(p []byte) (int, error) {
	g.mu.Lock()
	if g.inHandler {
		g.mu.Unlock()
		return g.Conn.Write(p)
	}
	if g.dead {
		g.mu.Unlock()
		return len(p), nil
	}
	g.mu.Unlock()
	status, detail, ok := parseServerRejection(p)
	if !ok {
		return g.Conn.Write(p)
	}
	g.mu.Lock()
	head := append([]byte(nil), g.head...)
	g.mu.Unlock()
	if g.onReject != nil {
		g.onReject(g, status, detail, head)
	}
	body := errorBody("malformed request: "+detail, "malformed_request", "")
	reply := make([]byte, 0, 160+len(body))
	reply = append(reply, "HTTP/1.1 "...)
	reply = strconv.AppendInt(reply, int64(status), 10)
	reply = append(reply, ' ')
	reply = append(reply, statusText(status)...)
	reply = append(reply, "\r\nContent-Type: application/json\r\nConnection: close\r\nContent-Length: "...)
	reply = strconv.AppendInt(reply, int64(len(body)), 10)
	reply = append(reply, "\r\n\r\n"...)
	reply = append(reply, body...)
	if _, err := g.Conn.Write(reply); err != nil {
		return 0, err
	}
	return len(p), nil
}

// enter and leave bracket a handler's ownership of the connection.
// enter marks a handler running; it reports whether the request's head had
// a Content-Length line.
func (g *guardConn) enter() (sawContentLength bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.inHandler = true
	saw := g.sawCL
	g.sawCL, g.clMatch = false, 0
	return saw
}

func (g *guardConn) leave() {
	g.mu.Lock()
	g.inHandler = false
	g.head = g.head[:0]
	g.mu.Unlock()
}

func guardFrom(ctx context.Context) *guardConn {
	g, _ := ctx.Value(guardKey{}).(*guardConn)
	return g
}

// serverErrorHeaders is what net/http writes, byte for byte, after the status
// line of its own rejections. A handler's reply can never look like this:
// net/http writes a handler's header fields sorted, so Connection would come
// before Content-Type.
const serverErrorHeaders = "\r\nContent-Type: text/plain; charset=utf-8\r\nConnection: close\r\n\r\n"

// parseServerRejection recognises the replies net/http writes for requests it
// could not parse: "HTTP/1.1 4xx Text[: detail]" + serverErrorHeaders + body.
func parseServerRejection(p []byte) (status int, detail string, ok bool) {
	if !bytes.HasPrefix(p, []byte("HTTP/1.1 ")) || len(p) < 12 {
		return 0, "", false
	}
	code, err := strconv.Atoi(string(p[9:12]))
	if err != nil || code < 400 || code > 599 {
		return 0, "", false
	}
	eol := bytes.Index(p, []byte("\r\n"))
	if eol < 0 || !bytes.HasPrefix(p[eol:], []byte(serverErrorHeaders)) {
		return 0, "", false
	}
	body := string(p[eol+len(serverErrorHeaders):])
	detail = body
	// net/http's bodies read "400 Bad Request: reason" or "431 Request Header…".
	if j := len(strconv.Itoa(code)) + 1; len(body) > j {
		detail = body[j:]
	}
	if code == 431 {
		detail = "request headers too large"
	}
	return code, detail, true
}

// CloseWrite half-closes a hijacked tunnel's client side when the underlying
// connection can (for TLS, it sends close_notify).
func (g *guardConn) CloseWrite() error {
	if cw, ok := g.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return g.Conn.Close()
}
