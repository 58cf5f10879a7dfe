package proxy

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/slapenir/slapenir/internal/audit"
	"github.com/slapenir/slapenir/internal/tunnel"
)

func TestRateLimit(t *testing.T) {
	up := echoUpstream(t)
	cfg := loopbackConfig()
	cfg.Limits.RatePerSecond = 0.01 // one token per 100 s: the burst is all there is
	cfg.Limits.RateBurst = 2
	p := startProxy(t, cfg)
	c := p.client()
	codes := []int{}
	var last *http.Response
	for i := 0; i < 3; i++ {
		resp, err := c.Get(up.URL + "/")
		if err != nil {
			t.Fatal(err)
		}
		codes = append(codes, resp.StatusCode)
		if i < 2 {
			resp.Body.Close()
		}
		last = resp
	}
	if codes[0] != 200 || codes[1] != 200 || codes[2] != http.StatusTooManyRequests {
		t.Fatalf("codes %v, want 200 200 429", codes)
	}
	if ra := last.Header.Get("Retry-After"); ra == "" || ra == "0" {
		t.Errorf("429 without a useful Retry-After: %q", ra)
	}
	if e := decodeError(t, last); e.Reason != "rate_limited" {
		t.Fatalf("reason %q", e.Reason)
	}
	if rec := findRecord(t, p.records(t, 3), "rate_limited"); rec.Decision != "deny" || rec.Status != 429 {
		t.Fatalf("record: %+v", rec)
	}
	// The proxy's own endpoints are not rate limited: health checks must
	// keep working for a client that is over its rate.
	resp, err := http.Get("http://" + p.addr + "/health")
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("health while rate limited: %v %v", err, resp)
	}
	resp.Body.Close()
}

func TestTunnelLimit(t *testing.T) {
	ln := silentUpstream(t)
	cfg := loopbackConfig()
	cfg.Limits.MaxTunnels = 1
	cfg.Policy.ConnectPorts = []int{portOf(t, "http://"+ln.Addr().String())}
	p := startProxy(t, cfg)
	// The first tunnel stays open…
	openTunnel(t, p.addr, ln.Addr().String())
	// …so the second is refused.
	resp := rawExchange(t, p.addr, fmt.Sprintf("CONNECT %s HTTP/1.1\r\nHost: %[1]s\r\n\r\n", ln.Addr()))
	if e := decodeError(t, resp); resp.StatusCode != 503 || e.Reason != "tunnel_limit" {
		t.Fatalf("second tunnel: %d %+v", resp.StatusCode, e)
	}
}

// silentUpstream accepts connections, reads what comes and never closes
// them: the kind of upstream that kept tunnel slots taken.
func silentUpstream(t *testing.T) net.Listener {
	ln := listenLoopback(t)
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() { _, _ = io.Copy(io.Discard, c) }()
		}
	}()
	return ln
}

// TestTunnelSlotsFreedWhenClientsGo: a client that closes its tunnel frees
// the slot within tunnel.Drain, even when the upstream never closes (700
// short-lived CONNECTs once locked everyone out for the idle timeout).
func TestTunnelSlotsFreedWhenClientsGo(t *testing.T) {
	ln := silentUpstream(t)
	cfg := loopbackConfig()
	cfg.Limits.MaxTunnels = 2
	cfg.Policy.ConnectPorts = []int{portOf(t, "http://"+ln.Addr().String())}
	p := startProxy(t, cfg)
	for round := 0; round < 3; round++ {
		deadline := time.Now().Add(tunnel.Drain + 3*time.Second)
		for i := 0; i < 2; i++ {
			for !connectAndLeave(t, p.addr, ln.Addr().String()) {
				if time.Now().After(deadline) {
					t.Fatalf("round %d: no tunnel slot came free within %s of its client leaving", round, tunnel.Drain+3*time.Second)
				}
				time.Sleep(100 * time.Millisecond)
			}
		}
	}
}

// connectAndLeave opens a tunnel and closes it at once; false when the
// proxy refused it.
func connectAndLeave(t *testing.T, proxyAddr, authority string) bool {
	t.Helper()
	c, err := net.Dial("tcp", proxyAddr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	fmt.Fprintf(c, "CONNECT %s HTTP/1.1\r\nHost: %[1]s\r\n\r\n", authority)
	resp, err := http.ReadResponse(bufio.NewReader(c), &http.Request{Method: http.MethodConnect})
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode == http.StatusOK
}

// TestTunnelLimitPerIdentity: one client cannot take every tunnel slot.
func TestTunnelLimitPerIdentity(t *testing.T) {
	ln := silentUpstream(t)
	cfg := loopbackConfig()
	cfg.Limits.MaxTunnelsPerIdentity = 1
	cfg.Policy.ConnectPorts = []int{portOf(t, "http://"+ln.Addr().String())}
	p := startProxy(t, cfg)
	openTunnel(t, p.addr, ln.Addr().String())
	resp := rawExchange(t, p.addr, fmt.Sprintf("CONNECT %s HTTP/1.1\r\nHost: %[1]s\r\n\r\n", ln.Addr()))
	if e := decodeError(t, resp); resp.StatusCode != 503 || e.Reason != "tunnel_limit" || !strings.Contains(e.Error, "max_tunnels_per_identity") {
		t.Fatalf("second tunnel of one client: %d %+v", resp.StatusCode, e)
	}
}

// TestAuditUnwritableRefuses uses /dev/full, where every write fails with
// ENOSPC even for root: once a record cannot be written, the proxy refuses
// traffic with 503 instead of proxying unaudited, and /health says so.
func TestAuditUnwritableRefuses(t *testing.T) {
	up := echoUpstream(t)
	al, err := audit.Open(audit.Options{File: "/dev/full"})
	if err != nil {
		t.Skipf("cannot open /dev/full here: %v", err)
	}
	p := startProxyWithAudit(t, loopbackConfig(), al, "/dev/full")
	c := p.client()
	// The first request's record fails to write…
	resp, err := c.Get(up.URL + "/first")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	// (its record is written as the exchange ends, which may trail the
	// response the client already has)
	deadline := time.Now().Add(5 * time.Second)
	for al.Healthy() == nil {
		if time.Now().After(deadline) {
			t.Fatal("writing to /dev/full never made the audit log unhealthy")
		}
		time.Sleep(5 * time.Millisecond)
	}
	// …and from then on nothing is proxied.
	for i := 0; i < 3; i++ {
		resp, err = c.Get(up.URL + "/next")
		if err != nil {
			t.Fatal(err)
		}
		if e := decodeError(t, resp); resp.StatusCode != 503 || e.Reason != "audit_unavailable" {
			t.Fatalf("got %d %+v, want 503 audit_unavailable", resp.StatusCode, e)
		}
	}
	resp, err = http.Get("http://" + p.addr + "/health")
	if err != nil {
		t.Fatal(err)
	}
	var h health
	decodeJSON(t, resp, &h)
	if resp.StatusCode != 503 || h.Status != "degraded" {
		t.Fatalf("health while audit fails: %d %+v", resp.StatusCode, h)
	}
}

// TestMalformedRequests sends what net/http refuses before any handler runs;
// each refusal is answered in the JSON shape and audited.
func TestMalformedRequests(t *testing.T) {
	p := startProxy(t, nil)
	big := strings.Repeat("a", 64<<10)
	cases := []struct {
		name, raw string
		status    int
	}{
		{"garbage request line", "HELLO\r\n\r\n", 400},
		{"bad header", "GET http://example.com/ HTTP/1.1\r\nHost: example.com\r\nBad Header: x\r\n\r\n", 400},
		{"duplicate differing content-length", "POST http://example.com/ HTTP/1.1\r\nHost: example.com\r\nContent-Length: 3\r\nContent-Length: 5\r\n\r\nabcde", 400},
		{"unsupported transfer-encoding", "POST http://example.com/ HTTP/1.1\r\nHost: example.com\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n", 501},
		{"oversized headers", "GET http://example.com/ HTTP/1.1\r\nHost: example.com\r\nX-Big: " + big + "\r\n\r\n", 431},
		{"missing host", "GET /x HTTP/1.1\r\n\r\n", 400},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			resp := parseResponse(t, rawRequest(t, p.addr, tc.raw))
			e := decodeError(t, resp)
			if resp.StatusCode != tc.status || e.Reason != "malformed_request" {
				t.Fatalf("got %d %+v, want %d malformed_request", resp.StatusCode, e, tc.status)
			}
			rec := p.lastRecord(t, i+1)
			if rec.Mode != "malformed" || rec.Decision != "deny" || rec.Status != tc.status || rec.Error == "" {
				t.Fatalf("record: %+v", rec)
			}
		})
	}
}

// TestSmuggling: a request with both Content-Length and chunked
// Transfer-Encoding is framed by the chunked encoding (RFC 9112 §6.3) and
// re-framed on the way out, so the bytes hidden behind the chunked body are
// never forwarded as part of it, and the upstream sees exactly one request.
func TestSmuggling(t *testing.T) {
	var mu sync.Mutex
	var seen []string
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		seen = append(seen, r.Method+" "+r.URL.Path+" cl="+r.Header.Get("Content-Length")+" te="+strings.Join(r.TransferEncoding, ",")+" body="+string(b))
		mu.Unlock()
		fmt.Fprint(w, "ok")
	}))
	defer up.Close()
	p := startProxy(t, nil)
	smuggled := "GET /admin HTTP/1.1\r\nHost: " + up.Listener.Addr().String() + "\r\n\r\n"
	body := "0\r\n\r\n" + smuggled
	raw := fmt.Sprintf("POST %s/upload HTTP/1.1\r\nHost: %s\r\nContent-Length: %d\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n%s",
		up.URL, up.Listener.Addr(), len(body), body)
	out := rawRequest(t, p.addr, raw)
	if !strings.HasPrefix(out, "HTTP/1.1 200") {
		t.Fatalf("reply: %q", out)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(seen) != 1 || !strings.HasPrefix(seen[0], "POST /upload") || strings.Contains(seen[0], "admin") || !strings.HasSuffix(seen[0], "body=") {
		t.Fatalf("upstream saw %q, want exactly the POST with an empty chunked body", seen)
	}
}

// TestBothLengthsCloseTheConnection: after a request with both
// Content-Length and Transfer-Encoding — the header far down a long head and
// the head sent in small pieces — the proxy answers with Connection: close
// and reads nothing more from that connection (RFC 9112 §6.1); a chunked
// request without Content-Length keeps its connection.
func TestBothLengthsCloseTheConnection(t *testing.T) {
	up := echoUpstream(t)
	p := startProxy(t, nil)
	filler := "X-Filler: " + strings.Repeat("f", 900) + "\r\n"
	for _, tc := range []struct {
		name      string
		lengths   string
		wantClose bool
	}{
		{"both", "Content-Length: 5\r\nTransfer-Encoding: chunked\r\n", true},
		{"both, odd case", "transfer-encoding: chunked\r\ncOnTeNt-LeNgTh: 5\r\n", true},
		{"chunked only", "Transfer-Encoding: chunked\r\n", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := net.Dial("tcp", p.addr)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			_ = c.SetDeadline(time.Now().Add(5 * time.Second))
			req := "POST " + up.URL + "/a HTTP/1.1\r\nHost: x\r\n" + filler + tc.lengths + "\r\n0\r\n\r\n"
			for i := 0; i < len(req); i += 7 {
				c.Write([]byte(req[i:min(i+7, len(req))]))
			}
			c.Write([]byte("GET " + up.URL + "/b HTTP/1.1\r\nHost: x\r\n\r\n"))
			br := bufio.NewReader(c)
			resp, err := http.ReadResponse(br, nil)
			if err != nil {
				t.Fatal(err)
			}
			io.Copy(io.Discard, resp.Body)
			if resp.Close != tc.wantClose {
				t.Fatalf("first response Connection: close = %v, want %v", resp.Close, tc.wantClose)
			}
			second, err := http.ReadResponse(br, nil)
			if tc.wantClose && err == nil {
				t.Fatalf("the proxy answered a second request (%d) on a connection it should have closed", second.StatusCode)
			}
			if !tc.wantClose && err != nil {
				t.Fatalf("no second response on a kept connection: %v", err)
			}
		})
	}
}

// smallTmpfs mounts a 4 MiB tmpfs for the test: a real file system that
// fills up.
func smallTmpfs(t *testing.T) string {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("mounting a small tmpfs needs root")
	}
	dir := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", dir).CombinedOutput(); err != nil {
		t.Skipf("cannot mount a tmpfs here: %v %s", err, out)
	}
	t.Cleanup(func() { _ = exec.Command("umount", "-l", dir).Run() })
	return dir
}

// TestAuditDiskNearlyFullRefusesFirst: on a real, small file system, the
// proxy stops taking requests while there is still room for the records of
// those in flight — before any audit write has failed — and takes them
// again once space is freed.
func TestAuditDiskNearlyFullRefusesFirst(t *testing.T) {
	dir := smallTmpfs(t)
	up := echoUpstream(t)
	cfg := loopbackConfig()
	cfg.Audit.File = filepath.Join(dir, "audit.jsonl")
	p := startProxy(t, cfg)
	get := func() *http.Response {
		t.Helper()
		resp, err := p.client().Get(up.URL + "/")
		if err != nil {
			t.Fatal(err)
		}
		return resp
	}
	if resp := get(); resp.StatusCode != 200 {
		t.Fatalf("with room: %d", resp.StatusCode)
	}
	// Fill the file system to within half a MiB.
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil {
		t.Fatal(err)
	}
	fill := int64(st.Bavail)*int64(st.Bsize) - 512<<10
	filler := filepath.Join(dir, "filler")
	if err := os.WriteFile(filler, make([]byte, fill), 0o600); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		resp := get()
		if resp.StatusCode == http.StatusServiceUnavailable {
			if e := decodeError(t, resp); e.Reason != "audit_unavailable" || !strings.Contains(e.Error, "free") {
				t.Fatalf("refusal: %+v", e)
			}
			break
		}
		resp.Body.Close()
		if time.Now().After(deadline) {
			t.Fatal("the proxy kept proxying with the audit file system nearly full")
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err := p.audit.Healthy(); err != nil {
		t.Fatalf("an audit write failed before the proxy refused: %v", err)
	}
	os.Remove(filler)
	deadline = time.Now().Add(5 * time.Second)
	for {
		resp := get()
		resp.Body.Close()
		if resp.StatusCode == 200 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the proxy did not take requests again after space was freed")
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestAuditRoomForStreamsInFlight is the fault seen in the soak: the audit
// file system fills while streams are in flight and eight clients keep
// sending requests with long paths. The streams admitted before were
// promised room for their records, the refusals may not use it up, and so
// every stream that was delivered has its outcome record, and no audit
// write fails.
func TestAuditRoomForStreamsInFlight(t *testing.T) {
	dir := smallTmpfs(t)
	release := make(chan struct{})
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/stream" {
			io.WriteString(w, "first\n")
			w.(http.Flusher).Flush()
			<-release
			io.WriteString(w, "last\n")
		}
	}))
	defer up.Close()
	cfg := loopbackConfig()
	cfg.Audit.File = filepath.Join(dir, "audit.jsonl")
	p := startProxy(t, cfg)
	const streams = 20
	long := strings.Repeat("p", 3000)
	var bodies []io.ReadCloser
	for i := 0; i < streams; i++ {
		resp, err := p.client().Get(up.URL + "/stream?" + long)
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("stream %d: %v %v", i, resp, err)
		}
		buf := make([]byte, 6)
		if _, err := io.ReadFull(resp.Body, buf); err != nil {
			t.Fatal(err)
		}
		bodies = append(bodies, resp.Body)
	}
	// Fill the file system to within 600 KiB: under the floor kept for
	// refusals, so nothing new is admitted.
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "filler"), make([]byte, int64(st.Bavail)*int64(st.Bsize)-600<<10), 0o600); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var refused, admitted atomic.Int64
	stop := time.Now().Add(1500 * time.Millisecond)
	for c := 0; c < 8; c++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			client := p.client()
			for time.Now().Before(stop) {
				resp, err := client.Get(up.URL + "/other?" + long)
				if err != nil {
					continue
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode == http.StatusServiceUnavailable {
					refused.Add(1)
				} else {
					admitted.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	close(release)
	for i, b := range bodies {
		rest, err := io.ReadAll(b)
		b.Close()
		if err != nil || string(rest) != "last\n" {
			t.Fatalf("stream %d was cut: %q %v", i, rest, err)
		}
	}
	if refused.Load() == 0 || admitted.Load() > 0 {
		t.Fatalf("with the file system nearly full: %d refused, %d admitted; want all refused", refused.Load(), admitted.Load())
	}
	var ended int
	for _, r := range p.records(t, streams) {
		if strings.HasPrefix(r.Path, "/stream") && r.Status == 200 && r.Decision == decisionAllow {
			ended++
		}
	}
	if ended != streams {
		t.Fatalf("%d of %d delivered streams have their outcome record", ended, streams)
	}
	if err := p.audit.Healthy(); err != nil {
		t.Fatalf("an audit write failed: %v", err)
	}
	t.Logf("%d refusals while full, %d refusal records", refused.Load(), len(p.records(t, streams))-streams)
}
