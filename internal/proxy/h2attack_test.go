package proxy

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// These tests are a hostile HTTP/2 client inside an intercepted tunnel: it
// speaks raw frames (golang.org/x/net/http2's Framer) to the proxy's inner
// server, as nothing but a test or an attacker would.

// holdingUpstream answers /fast at once and holds every other request open
// until the proxy gives up on it (the client's stream is reset or the
// tunnel closes), counting how many it holds at once.
type holdingUpstream struct {
	*httptest.Server
	cur, peak, total atomic.Int64
}

func newHoldingUpstream(t *testing.T) *holdingUpstream {
	t.Helper()
	u := &holdingUpstream{}
	u.Server = httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/fast" {
			io.WriteString(w, "fast")
			return
		}
		u.total.Add(1)
		n := u.cur.Add(1)
		defer u.cur.Add(-1)
		for p := u.peak.Load(); n > p && !u.peak.CompareAndSwap(p, n); p = u.peak.Load() {
		}
		<-r.Context().Done()
	}))
	t.Cleanup(u.Close)
	return u
}

// h2conn is a raw HTTP/2 connection through an intercepted tunnel.
type h2conn struct {
	t      *testing.T
	c      *tls.Conn
	fr     *http2.Framer
	hbuf   bytes.Buffer
	enc    *hpack.Encoder
	auth   string
	maxStr uint32 // the server's SETTINGS_MAX_CONCURRENT_STREAMS
	next   uint32
}

// dialH2 opens a CONNECT tunnel to up through p, speaks TLS with ALPN h2 to
// the interception, and exchanges the preface and SETTINGS.
func dialH2(t *testing.T, p *testProxy, up *httptest.Server) *h2conn {
	t.Helper()
	authority := up.Listener.Addr().String()
	raw := openTunnel(t, p.addr, authority)
	c := tls.Client(raw, &tls.Config{RootCAs: interceptCA(t, p), ServerName: "127.0.0.1", NextProtos: []string{"h2"}})
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	if err := c.Handshake(); err != nil {
		t.Fatal(err)
	}
	if c.ConnectionState().NegotiatedProtocol != "h2" {
		t.Fatalf("the interception did not offer h2: %q", c.ConnectionState().NegotiatedProtocol)
	}
	h := &h2conn{t: t, c: c, auth: authority, next: 1}
	h.enc = hpack.NewEncoder(&h.hbuf)
	if _, err := io.WriteString(c, http2.ClientPreface); err != nil {
		t.Fatal(err)
	}
	h.fr = http2.NewFramer(c, c)
	h.fr.ReadMetaHeaders = hpack.NewDecoder(4096, nil)
	h.fr.MaxHeaderListSize = 1 << 20
	if err := h.fr.WriteSettings(); err != nil {
		t.Fatal(err)
	}
	f, err := h.fr.ReadFrame()
	if err != nil {
		t.Fatal(err)
	}
	sf, ok := f.(*http2.SettingsFrame)
	if !ok || sf.IsAck() {
		t.Fatalf("first frame from the server: %v", f)
	}
	h.maxStr, _ = sf.Value(http2.SettingMaxConcurrentStreams)
	// Acknowledged before any stream opens, so the server holds the
	// connection to what it advertised rather than its initial 100.
	if err := h.fr.WriteSettingsAck(); err != nil {
		t.Fatal(err)
	}
	return h
}

// headers is the header block of GET path, with extra fields.
func (h *h2conn) headers(path string, extra ...hpack.HeaderField) []byte {
	h.hbuf.Reset()
	for _, f := range append([]hpack.HeaderField{
		{Name: ":method", Value: "GET"}, {Name: ":scheme", Value: "https"},
		{Name: ":authority", Value: h.auth}, {Name: ":path", Value: path},
	}, extra...) {
		_ = h.enc.WriteField(f)
	}
	return bytes.Clone(h.hbuf.Bytes())
}

// open starts a GET stream and returns its id.
func (h *h2conn) open(path string) uint32 {
	id := h.next
	h.next += 2
	if err := h.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: h.headers(path), EndStream: true, EndHeaders: true}); err != nil {
		h.t.Fatal(err)
	}
	return id
}

// goAwayOrClosed reads until the server sends GOAWAY or closes the
// connection, and returns the GOAWAY's code (-1 for a bare close, -2 when
// neither came).
func (h *h2conn) goAwayOrClosed() int {
	_ = h.c.SetReadDeadline(time.Now().Add(10 * time.Second))
	for {
		f, err := h.fr.ReadFrame()
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				return -2
			}
			return -1
		}
		if g, ok := f.(*http2.GoAwayFrame); ok {
			return int(g.ErrCode)
		}
	}
}

// fastThroughProxy is another agent's ordinary request, served while the
// attack goes on.
func fastThroughProxy(t *testing.T, p *testProxy, up *httptest.Server) {
	t.Helper()
	if err := fastRequest(p, up, interceptCA(t, p)); err != nil {
		t.Fatal(err)
	}
}

func fastRequest(p *testProxy, up *httptest.Server, roots *x509.CertPool) error {
	tr := &http.Transport{Proxy: http.ProxyURL(p.url()), TLSClientConfig: &tls.Config{RootCAs: roots}, ForceAttemptHTTP2: true}
	defer tr.CloseIdleConnections()
	resp, err := (&http.Client{Transport: tr, Timeout: 10 * time.Second}).Get(up.URL + "/fast")
	if err != nil {
		return fmt.Errorf("another agent is not served during the attack: %w", err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || string(b) != "fast" {
		return fmt.Errorf("another agent during the attack: %d %q", resp.StatusCode, b)
	}
	return nil
}

// waitFor polls cond until it holds; the deadline only keeps a broken
// proxy from hanging the test.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !cond(); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("gave up waiting for %s", what)
		}
	}
}

// TestH2StreamsPerTunnelAreBounded: one intercepted tunnel carries at most
// innerMaxStreams requests at once, advertised and enforced: the streams
// past it are refused at once and never reach the upstream, so an identity's
// concurrency through interception is max_tunnels_per_identity times that,
// not times net/http's 250.
func TestH2StreamsPerTunnelAreBounded(t *testing.T) {
	up := newHoldingUpstream(t)
	p := startInterceptingProxy(t, up.Server)
	h := dialH2(t, p, up.Server)
	if h.maxStr == 0 || h.maxStr > innerMaxStreams {
		t.Fatalf("the inner server advertises SETTINGS_MAX_CONCURRENT_STREAMS %d, want at most %d", h.maxStr, innerMaxStreams)
	}
	const extra = 20
	want := int(h.maxStr)
	for range want + extra {
		h.open("/hold")
	}
	// Every stream past the limit is refused; read until they all are.
	refused := 0
	_ = h.c.SetReadDeadline(time.Now().Add(10 * time.Second))
	for refused < extra {
		f, err := h.fr.ReadFrame()
		if err != nil {
			t.Fatalf("after %d refusals: %v", refused, err)
		}
		if rst, ok := f.(*http2.RSTStreamFrame); ok {
			if rst.ErrCode != http2.ErrCodeRefusedStream && rst.ErrCode != http2.ErrCodeProtocol {
				t.Fatalf("stream %d reset with %v, want REFUSED_STREAM or PROTOCOL_ERROR", rst.StreamID, rst.ErrCode)
			}
			refused++
		}
	}
	waitFor(t, "the held streams to reach the upstream", func() bool { return up.cur.Load() == int64(want) })
	fastThroughProxy(t, p, up.Server)
	if peak := up.peak.Load(); peak > int64(innerMaxStreams) {
		t.Fatalf("the upstream held %d requests from one tunnel at once, want at most %d", peak, innerMaxStreams)
	}
	h.c.Close()
	waitFor(t, "the held requests to end with the tunnel", func() bool { return up.cur.Load() == 0 })
}

// TestH2RapidResetIsBounded (CVE-2023-44487): a client that opens streams
// and resets each at once, thousands of times, never has more handlers
// running than the stream limit, is told to calm down (GOAWAY
// ENHANCE_YOUR_CALM) or cut, and leaves no goroutines behind; another
// agent is served meanwhile.
func TestH2RapidResetIsBounded(t *testing.T) {
	up := newHoldingUpstream(t)
	p := startInterceptingProxy(t, up.Server)
	fastThroughProxy(t, p, up.Server) // warm: the proxy's own idle goroutines
	before := runtime.NumGoroutine()
	// Another agent asks for something all through the flood.
	roots := interceptCA(t, p)
	stop, served := make(chan struct{}), make(chan error, 1)
	go func() {
		for {
			select {
			case <-stop:
				served <- nil
				return
			default:
			}
			if err := fastRequest(p, up.Server, roots); err != nil {
				served <- err
				return
			}
		}
	}()
	// What may stay is the upstream transport's idle pool (forward.go:
	// MaxIdleConnsPerHost 64, three goroutines each counting the
	// upstream's own), never something per stream.
	bound := before + 3*(64+1) + 10
	const streams = 10000
	var werr error
	peakG, tunnels, code := 0, 0, 0
	for sent := 0; sent < streams; {
		// A GOAWAY only ends one tunnel: the attacker opens the next.
		h := dialH2(t, p, up.Server)
		tunnels++
		// It reads everything the server sends, so its own socket never
		// pushes back on the flood.
		goAway := make(chan int, 1)
		go func() { goAway <- h.goAwayOrClosed() }()
		for ; sent < streams; sent++ {
			if sent%50 == 0 {
				peakG = max(peakG, runtime.NumGoroutine())
			}
			id := h.next
			h.next += 2
			if werr = h.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: h.headers("/hold"), EndStream: true, EndHeaders: true}); werr != nil {
				break // cut, or pushed back until the deadline
			}
			if werr = h.fr.WriteRSTStream(id, http2.ErrCodeCancel); werr != nil {
				break
			}
		}
		h.c.Close()
		if c := <-goAway; c > 0 {
			code = c
		}
	}
	if code > 0 && code != int(http2.ErrCodeEnhanceYourCalm) && code != int(http2.ErrCodeProtocol) {
		t.Fatalf("GOAWAY %v after a rapid reset flood", http2.ErrCode(code))
	}
	close(stop)
	if err := <-served; err != nil {
		t.Fatal(err)
	}
	fastThroughProxy(t, p, up.Server)
	// Per running handler: itself, its request's, and its dial waiting
	// for a slot; per upstream connection (being opened: at most
	// maxDialsPerUpstream; in use: at most one per handler; idle: at most
	// MaxIdleConnsPerHost) the dial or the two loops, and the upstream's
	// own. Bounded by constants, never by the streams sent.
	if limit := before + 10 + 3*innerMaxStreams + 4*(maxDialsPerUpstream+innerMaxStreams+64); peakG > limit {
		t.Fatalf("%d goroutines during the flood (%d before it), want at most %d", peakG, before, limit)
	}
	if n := up.total.Load(); n >= streams {
		t.Fatalf("all %d reset streams reached the upstream", n)
	}
	deadline := time.Now().Add(10 * time.Second)
	for runtime.NumGoroutine() > bound && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if n := runtime.NumGoroutine(); n > bound {
		buf := make([]byte, 1<<20)
		buf = buf[:runtime.Stack(buf, true)]
		t.Fatalf("%d goroutines before the flood, %d after:\n%s", before, n, buf)
	}
	t.Logf("rapid reset: %d of %d streams in %d tunnels reached the upstream (peak %d at once), %d goroutines at most (%d before), last GOAWAY %d, write error %v", up.total.Load(), streams, tunnels, up.peak.Load(), peakG, before, code, werr)
}

// TestH2ContinuationFloodIsCut (CVE-2023-45288): a HEADERS frame without
// END_HEADERS followed by CONTINUATION frames without end is cut once the
// header list passes the limit; the proxy does not buffer it, and another
// agent is served.
func TestH2ContinuationFloodIsCut(t *testing.T) {
	up := newHoldingUpstream(t)
	p := startInterceptingProxy(t, up.Server)
	h := dialH2(t, p, up.Server)
	if err := h.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: h.headers("/hold"), EndStream: true}); err != nil {
		t.Fatal(err)
	}
	// Each CONTINUATION carries a fresh, never-indexed 8 KiB field.
	field := func(i int) []byte {
		h.hbuf.Reset()
		_ = h.enc.WriteField(hpack.HeaderField{Name: "x-flood-" + strconv.Itoa(i), Value: strings.Repeat("a", 8<<10), Sensitive: true})
		return bytes.Clone(h.hbuf.Bytes())
	}
	sent := 0
	for i := range 64 << 20 / (8 << 10) { // up to 64 MiB
		if err := h.fr.WriteContinuation(1, false, field(i)); err != nil {
			break
		}
		sent += 8 << 10
	}
	if code := h.goAwayOrClosed(); code != -1 && code != int(http2.ErrCodeProtocol) && code != int(http2.ErrCodeEnhanceYourCalm) {
		t.Fatalf("GOAWAY %v after a CONTINUATION flood", http2.ErrCode(code))
	}
	if sent >= 64<<20 {
		t.Fatal("the proxy read 64 MiB of one header block without cutting the connection")
	}
	if up.total.Load() != 0 {
		t.Fatal("the flooded request reached the upstream")
	}
	fastThroughProxy(t, p, up.Server)
	t.Logf("CONTINUATION flood: cut after %d KiB written", sent>>10)
}

// TestH2HugeHeaderListIsRefused: a header list past limits.max_header_bytes
// never reaches the upstream. Made small on the wire by HPACK (one 3 KiB
// field indexed once and referenced a hundred times: 300 KiB decoded from
// 3 KiB), it is refused with a 431 on its stream and the tunnel's next
// stream is served; sent as it is, over CONTINUATION frames, net/http cuts
// the tunnel, and other agents are served.
func TestH2HugeHeaderListIsRefused(t *testing.T) {
	up := newHoldingUpstream(t)
	p := startInterceptingProxy(t, up.Server)
	h := dialH2(t, p, up.Server)
	var extra []hpack.HeaderField
	for range 100 {
		extra = append(extra, hpack.HeaderField{Name: "x-amplified", Value: strings.Repeat("b", 3<<10)})
	}
	block := h.headers("/hold", extra...)
	if len(block) > 16<<10 {
		t.Fatalf("the amplified block is %d bytes, meant to fit one frame", len(block))
	}
	if err := h.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: block, EndStream: true, EndHeaders: true}); err != nil {
		t.Fatal(err)
	}
	h.next = 3
	status := func(id uint32) string {
		t.Helper()
		_ = h.c.SetReadDeadline(time.Now().Add(10 * time.Second))
		for {
			f, err := h.fr.ReadFrame()
			if err != nil {
				t.Fatalf("waiting for stream %d: %v", id, err)
			}
			switch f := f.(type) {
			case *http2.MetaHeadersFrame:
				if f.StreamID == id {
					return f.PseudoValue("status")
				}
			case *http2.RSTStreamFrame:
				if f.StreamID == id {
					return "reset " + f.ErrCode.String()
				}
			case *http2.GoAwayFrame:
				t.Fatalf("the whole tunnel was cut (GOAWAY %v) for one oversized request", f.ErrCode)
			}
		}
	}
	if s := status(1); s != "431" {
		t.Fatalf("a header list of 300 KiB decoded: %s, want 431", s)
	}
	if s := status(h.open("/fast")); s != "200" {
		t.Fatalf("the next stream in the tunnel: %s", s)
	}

	// The same list sent literally: 300 KiB of HEADERS and CONTINUATION.
	h = dialH2(t, p, up.Server)
	for i := range extra {
		extra[i].Sensitive = true // never indexed: every byte on the wire
	}
	block = h.headers("/hold", extra...)
	first, rest := block[:16<<10], block[16<<10:]
	werr := h.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: first, EndStream: true})
	for werr == nil && len(rest) > 0 {
		n := min(len(rest), 16<<10)
		werr = h.fr.WriteContinuation(1, n == len(rest), rest[:n])
		rest = rest[n:]
	}
	if code := h.goAwayOrClosed(); code == -2 {
		t.Fatal("a literal 300 KiB header list neither got a GOAWAY nor closed the tunnel")
	}
	if up.total.Load() != 0 {
		t.Fatal("an oversized request reached the upstream")
	}
	fastThroughProxy(t, p, up.Server)
}
