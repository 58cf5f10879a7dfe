package proxy

import (
	"bufio"
	"crypto/tls"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httptrace"
	"net/textproto"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/slapenir/slapenir/internal/audit"
	"github.com/slapenir/slapenir/internal/testutil/syncbuf"
)

// rawUpstream is an upstream that answers every request with bytes chosen by
// the test, written as given (in pieces, when split), so it can send what no
// well-behaved server library would: folded headers, trailers, 1xx, bad
// framing.
type rawUpstream struct {
	ln   net.Listener
	mu   sync.Mutex
	resp [][]byte // the pieces of the next response
	wg   sync.WaitGroup
}

func newRawUpstream(t testing.TB) *rawUpstream {
	t.Helper()
	u := &rawUpstream{ln: listenLoopback(t)}
	u.wg.Add(1)
	go u.serve()
	t.Cleanup(func() { u.ln.Close(); u.wg.Wait() })
	return u
}

func (u *rawUpstream) addr() string { return u.ln.Addr().String() }

// answer sets what the next requests get: the pieces are written one by one,
// with a short pause between them so each arrives in a read of its own.
func (u *rawUpstream) answer(pieces ...string) {
	u.mu.Lock()
	defer u.mu.Unlock()
	u.resp = nil
	for _, p := range pieces {
		u.resp = append(u.resp, []byte(p))
	}
}

func (u *rawUpstream) serve() {
	defer u.wg.Done()
	for {
		c, err := u.ln.Accept()
		if err != nil {
			return
		}
		u.wg.Add(1)
		go func() {
			defer u.wg.Done()
			defer c.Close()
			_ = c.SetDeadline(time.Now().Add(10 * time.Second))
			br := bufio.NewReader(c)
			req, err := http.ReadRequest(br)
			if err != nil {
				return
			}
			drain(req)
			u.mu.Lock()
			pieces := u.resp
			u.mu.Unlock()
			for i, p := range pieces {
				if i > 0 {
					time.Sleep(2 * time.Millisecond)
				}
				if _, err := c.Write(p); err != nil {
					return
				}
			}
		}()
	}
}

func drain(req *http.Request) {
	_, _ = io.Copy(io.Discard, req.Body)
	req.Body.Close()
}

// throughProxy sends one request for up through p, by X-Target-URL or as
// a forward proxy request, and returns every byte the agent received, until
// the proxy closed or went quiet.
func throughProxy(t testing.TB, p *testProxy, up *rawUpstream, mode string) string {
	t.Helper()
	req := "GET /echo HTTP/1.1\r\nHost: proxy\r\nX-Target-URL: http://" + up.addr() + "\r\nConnection: close\r\n\r\n"
	if mode == modeForward {
		req = "GET http://" + up.addr() + "/echo HTTP/1.1\r\nHost: " + up.addr() + "\r\nConnection: close\r\n\r\n"
	}
	return rawRequest(t, p.addr, req)
}

// assertAlive fails unless the proxy still answers /health.
func assertAlive(t testing.TB, p *testProxy) {
	t.Helper()
	resp, err := http.Get("http://" + p.addr + "/health")
	if err != nil {
		t.Fatalf("the proxy died: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("/health answered %d after a hostile response", resp.StatusCode)
	}
}

// TestEscapedFirstByteOfSecretDoesNotCrash is the crash seen in the field: a
// percent or JSON escape of a secret's first byte made the redactor read the
// vault's memory, which is PROT_NONE at rest, and the whole proxy died.
func TestEscapedFirstByteOfSecretDoesNotCrash(t *testing.T) {
	up := newRawUpstream(t)
	p := credProxy(t, []string{"127.0.0.1"}, nil)
	for _, body := range []string{"q=%67", `"\u0067"`, "%67%68%70%5f", `\u0067\u0068\u0070_R3al`, "%6" + "7"} {
		up.answer("HTTP/1.1 200 OK\r\nContent-Length: " + strconv.Itoa(len(body)) + "\r\n\r\n" + body)
		resp := parseResponse(t, throughProxy(t, p, up, modeTarget))
		got, err := io.ReadAll(resp.Body)
		if err != nil || string(got) != body {
			t.Errorf("body %q: the agent got %q (%v)", body, got, err)
		}
		assertAlive(t, p)
	}
}

// agentSees parses what the agent received and returns every part of it a
// client could read: the heads (status lines, header names and values of 1xx
// and final responses, trailers) and the rest (the bytes as framed on the
// wire, and the decoded body).
func agentSees(raw string) (heads, rest string) {
	var h, r strings.Builder
	r.WriteString(raw)
	br := bufio.NewReader(strings.NewReader(raw))
	for {
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			return h.String(), r.String()
		}
		h.WriteString(resp.Status + "\n")
		writeHeader(&h, resp.Header)
		if resp.StatusCode >= 200 {
			b, _ := io.ReadAll(resp.Body)
			r.Write(b)
			writeHeader(&h, resp.Trailer)
			return h.String(), r.String()
		}
	}
}

func writeHeader(sb *strings.Builder, h http.Header) {
	for k, vs := range h {
		sb.WriteString(k + ": " + strings.Join(vs, ", ") + "\n")
	}
}

// assertAgentSeesNoSecret checks every part of a raw response.
func assertAgentSeesNoSecret(t testing.TB, where, raw string) {
	t.Helper()
	heads, rest := agentSees(raw)
	assertNoSecretInHead(t, where, []byte(heads))
	assertNoSecret(t, where, []byte(rest))
}

// hostileResponses send the secret in every part of a response that is not
// the body, as a hostile upstream would; each is a list of writes.
func hostileResponses() map[string][]string {
	half := len(realToken) / 2
	return map[string][]string{
		"trailer":                     {"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTrailer: X-Tr\r\n\r\n2\r\nok\r\n0\r\nX-Tr: " + realToken + "\r\n\r\n"},
		"unannounced trailer":         {"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\nX-Late: " + realToken + "\r\n\r\n"},
		"trailer split across writes": {"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\nX-Tr: " + realToken[:half], realToken[half:] + "\r\n\r\n"},
		"103 early hints": {"HTTP/1.1 103 Early Hints\r\nLink: </x?t=" + realToken + ">; rel=preload\r\n\r\n",
			"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"},
		"obs-folded header":       {"HTTP/1.1 200 OK\r\nX-Fold: " + realToken[:half] + "\r\n " + realToken[half:] + "\r\nContent-Length: 2\r\n\r\nok"},
		"obs-folded with a tab":   {"HTTP/1.1 200 OK\r\nX-Fold: a " + realToken[:half] + "\r\n\t" + realToken[half:] + " b\r\nContent-Length: 2\r\n\r\nok"},
		"secret as header name":   {"HTTP/1.1 200 OK\r\n" + realToken + ": x\r\nContent-Length: 2\r\n\r\nok"},
		"secret as trailer name":  {"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTrailer: " + realToken + "\r\n\r\n2\r\nok\r\n0\r\n" + realToken + ": x\r\n\r\n"},
		"reason phrase":           {"HTTP/1.1 200 " + realToken + "\r\nContent-Length: 2\r\n\r\nok"},
		"odd status and reason":   {"HTTP/1.1 599 " + realToken + "\r\nContent-Length: 2\r\n\r\nok"},
		"malformed status line":   {"HTTP/1.1 2x0 " + realToken + "\r\nContent-Length: 2\r\n\r\nok"},
		"malformed header line":   {"HTTP/1.1 200 OK\r\n" + realToken + "\r\nContent-Length: 2\r\n\r\nok"},
		"garbage instead of HTTP": {realToken + "\r\n\r\n"},
		"bad chunk size":          {"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + realToken + "\r\n"},
	}
}

// TestNothingOutsideTheBodyLeaks sends each hostile response in target and
// forward mode alike.
func TestNothingOutsideTheBodyLeaks(t *testing.T) {
	up := newRawUpstream(t)
	p := credProxy(t, []string{"127.0.0.1"}, nil)
	cases := hostileResponses()
	for name, pieces := range cases {
		for _, mode := range []string{modeTarget, modeForward} {
			t.Run(mode+"/"+name, func(t *testing.T) {
				up.answer(pieces...)
				assertAgentSeesNoSecret(t, name, throughProxy(t, p, up, mode))
				assertAlive(t, p)
			})
		}
	}
}

// FuzzHostileUpstream drives the real Server, with its secret loaded
// through the real vault (memguard, or the PROT_NONE slab when memory
// cannot be locked) as slapenir proxy loads it, with arbitrary upstream
// responses — status line, headers, body, chunking, trailers, encodings —
// written in two pieces. The proxy must survive each, keep serving, and let
// no form of the secret reach the agent.
func FuzzHostileUpstream(f *testing.F) {
	for _, pieces := range hostileResponses() {
		f.Add([]byte(strings.Join(pieces, "")), uint16(len(pieces[0])))
	}
	for _, body := range []string{"q=%67", `"\u0067"`, "&#103;hp&lowbar;R3al", strings.ToUpper(realToken)} {
		f.Add([]byte("HTTP/1.1 200 OK\r\nContent-Length: "+strconv.Itoa(len(body))+"\r\n\r\n"+body), uint16(20))
	}
	for _, resp := range bombResponses(f) {
		f.Add([]byte(resp), uint16(len(resp)/2))
	}
	up := newRawUpstream(f)
	p := credProxy(f, []string{"127.0.0.1"}, nil)
	f.Fuzz(func(t *testing.T, resp []byte, split uint16) {
		k := int(split) % (len(resp) + 1)
		up.answer(string(resp[:k]), string(resp[k:]))
		mode := modeTarget
		if split&1 == 1 {
			mode = modeForward
		}
		assertAgentSeesNoSecret(t, "a fuzzed response", throughProxy(t, p, up, mode))
		assertAlive(t, p)
	})
}

// panicWriter panics the moment a response head is written: a stand-in for
// a bug anywhere on one request's path.
type panicWriter struct{ http.ResponseWriter }

func (panicWriter) WriteHeader(int) { panic("a bug on this request's path") }

// TestPanicIsContainedToItsRequest: a panic while serving one request cuts
// that request's connection, is logged and audited as an internal error,
// and counted, while the proxy serves everyone else.
func TestPanicIsContainedToItsRequest(t *testing.T) {
	af := filepath.Join(t.TempDir(), "audit.jsonl")
	al, err := audit.Open(audit.Options{File: af})
	if err != nil {
		t.Fatal(err)
	}
	defer al.Close()
	var logs syncbuf.Buffer
	srv, err := New(Options{Config: loopbackConfig(), Audit: al, AuditFile: af, Log: slog.New(slog.NewTextHandler(&logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/boom" {
			w = panicWriter{w}
		}
		srv.ServeHTTP(w, r)
	}))
	defer hs.Close()
	if resp, err := http.Get(hs.URL + "/boom"); err == nil {
		resp.Body.Close()
		t.Fatalf("a request that panicked got an answer (%d); its connection must be cut", resp.StatusCode)
	}
	resp, err := http.Get(hs.URL + "/health")
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("after one request panicked, /health: %v %v", resp, err)
	}
	resp.Body.Close()
	rec := findRecord(t, readRecords(t, af), "internal_error")
	if rec.Decision != decisionError || !strings.Contains(rec.Error, rec.RequestID) {
		t.Fatalf("the panic's record: %+v", rec)
	}
	if !strings.Contains(logs.String(), "panic serving a request") || !strings.Contains(logs.String(), "level=ERROR") {
		t.Fatalf("the panic was not logged as an error: %s", logs.String())
	}
	if got := counterValue(t, srv, "slapenir_proxy_panics_total"); got != 1 {
		t.Fatalf("slapenir_proxy_panics_total = %v, want 1", got)
	}
}

func counterValue(t *testing.T, srv *Server, name string) float64 {
	t.Helper()
	mfs, err := srv.metrics.gatherer.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name {
			return mf.GetMetric()[0].GetCounter().GetValue()
		}
	}
	t.Fatalf("no metric %s", name)
	return 0
}

// TestNothingOutsideTheBodyLeaksInterceptedHTTP2: inside an intercepted
// tunnel, spoken HTTP/2 by the agent and by the upstream, the secret in a
// 103's headers, a header name, a declared and an undeclared trailer is
// scrubbed as in the other ways in.
func TestNothingOutsideTheBodyLeaksInterceptedHTTP2(t *testing.T) {
	up := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Link", "</x?t="+realToken+">; rel=preload")
		w.WriteHeader(http.StatusEarlyHints)
		w.Header().Del("Link")
		w.Header().Set("Trailer", "X-Declared")
		w.Header().Set(realToken, "as a name")
		io.WriteString(w, "body")
		w.Header().Set("X-Declared", realToken)
		w.Header().Set(http.TrailerPrefix+"X-Late", "late "+realToken)
	}))
	up.EnableHTTP2 = true
	up.StartTLS()
	defer up.Close()
	p, _ := credProxyIntercepting(t, up)
	var early []string
	tr := &http.Transport{Proxy: http.ProxyURL(p.url()), TLSClientConfig: &tls.Config{RootCAs: interceptCA(t, p)}, ForceAttemptHTTP2: true}
	c := &http.Client{Transport: tr}
	req, _ := http.NewRequest("GET", up.URL+"/", nil)
	req = req.WithContext(httptrace.WithClientTrace(req.Context(), &httptrace.ClientTrace{
		Got1xxResponse: func(code int, h textproto.MIMEHeader) error {
			early = append(early, fmt.Sprint(code, h))
			return nil
		},
	}))
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.ProtoMajor != 2 || string(body) != "body" {
		t.Fatalf("want an HTTP/2 answer inside the tunnel, got %s %q", resp.Proto, body)
	}
	var all strings.Builder
	writeHeader(&all, resp.Header)
	writeHeader(&all, resp.Trailer)
	all.WriteString(strings.Join(early, "\n"))
	assertNoSecretInHead(t, "intercepted HTTP/2 heads", []byte(all.String()))
	if len(early) == 0 || resp.Trailer.Get("X-Declared") != "[REDACTED]" {
		t.Fatalf("the 103 (%v) or the declared trailer (%v) did not come through scrubbed", early, resp.Trailer)
	}
}
