package relay

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/slapenir/slapenir/internal/safetext"
	"github.com/slapenir/slapenir/internal/tunnel"
)

// tunnels turns a client's CONNECT into a CONNECT to the proxy and relays
// bytes both ways; it keeps the open ones so Close can cut them.
type tunnels struct {
	up   *Upstream
	open tunnel.Registry
}

func newTunnels(up *Upstream) *tunnels {
	return &tunnels{up: up}
}

func (t *tunnels) serve(w http.ResponseWriter, r *http.Request) {
	target := r.Host
	if _, _, err := net.SplitHostPort(target); err != nil || strings.ContainsAny(target, " \r\n") {
		writeFailure(w, http.StatusBadRequest, fmt.Sprintf("relay: CONNECT target %q is not host:port", safetext.Cut(target, 200)), reasonBadRequest)
		return
	}
	hj, ok := w.(http.Hijacker)
	if !ok {
		writeFailure(w, http.StatusHTTPVersionNotSupported, "relay: CONNECT needs HTTP/1.1", reasonBadRequest)
		return
	}
	pc, br, resp, err := t.connect(r.Context(), target)
	if err != nil {
		writeFailure(w, http.StatusBadGateway, fmt.Sprintf(
			"relay: %s failed: cannot open a tunnel to %s through the SLAPENIR proxy at %s: %v; check that the proxy runs and SLAPENIR_PROXY_URL names it",
			hopRelayProxy, target, t.up.url, err), reasonProxyUnreachable)
		return
	}
	if resp.StatusCode != http.StatusOK {
		// The proxy refused (policy, rate limit) or could not reach the
		// target: its answer, JSON and all, is the client's.
		defer pc.Close()
		defer resp.Body.Close()
		for k, vs := range resp.Header {
			w.Header()[k] = vs
		}
		w.WriteHeader(resp.StatusCode)
		_, _ = io.Copy(w, resp.Body)
		return
	}
	cc, cbuf, err := hj.Hijack()
	if err != nil {
		_ = pc.Close()
		return
	}
	if !t.open.Add(cc, pc) {
		_ = cc.Close()
		_ = pc.Close()
		return
	}
	defer t.open.Done(cc, pc)
	if _, err := io.WriteString(cc, "HTTP/1.1 200 Connection established\r\n\r\n"); err != nil {
		_ = cc.Close()
		_ = pc.Close()
		return
	}
	tunnel.Pipe(cc, cbuf.Reader, pc, br)
}

// close cuts every open tunnel and waits for their relays to end.
func (t *tunnels) close() { t.open.Close() }

// connect opens a connection to the proxy and asks it for a tunnel to target.
// br holds whatever the proxy sent after its response head.
func (t *tunnels) connect(ctx context.Context, target string) (net.Conn, *bufio.Reader, *http.Response, error) {
	pc, err := t.up.dial(ctx)
	if err != nil {
		return nil, nil, nil, err
	}
	_ = pc.SetDeadline(time.Now().Add(dialTimeout))
	req := &http.Request{Method: http.MethodConnect, Host: target, Header: http.Header{}}
	if _, err := fmt.Fprintf(pc, "CONNECT %s HTTP/1.1\r\nHost: %s\r\n\r\n", target, target); err != nil {
		_ = pc.Close()
		return nil, nil, nil, fmt.Errorf("sending CONNECT: %w", err)
	}
	br := bufio.NewReader(pc)
	resp, err := http.ReadResponse(br, req)
	if err != nil {
		_ = pc.Close()
		return nil, nil, nil, fmt.Errorf("reading the proxy's answer to CONNECT: %w", err)
	}
	_ = pc.SetDeadline(time.Time{})
	return pc, br, resp, nil
}
