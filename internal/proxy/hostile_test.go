package proxy

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
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

// throughProxy sends one target-mode request for up through p and returns
// every byte the agent received, until the proxy closed or went quiet.
func throughProxy(t testing.TB, p *testProxy, up *rawUpstream) string {
	t.Helper()
	c, err := net.Dial("tcp", p.addr)
	if err != nil {
		t.Fatalf("the proxy does not accept connections any more: %v", err)
	}
	defer c.Close()
	req := "GET /echo HTTP/1.1\r\nHost: proxy\r\nX-Target-URL: http://" + up.addr() + "\r\nConnection: close\r\n\r\n"
	if _, err := c.Write([]byte(req)); err != nil {
		t.Fatal(err)
	}
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	var sb strings.Builder
	buf := make([]byte, 4096)
	for {
		n, err := c.Read(buf)
		sb.Write(buf[:n])
		if err != nil {
			return sb.String()
		}
	}
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
		resp := parseResponse(t, throughProxy(t, p, up))
		got, err := io.ReadAll(resp.Body)
		if err != nil || string(got) != body {
			t.Errorf("body %q: the agent got %q (%v)", body, got, err)
		}
		assertAlive(t, p)
	}
}

// agentSees parses what the agent received and returns every part of it a
// client could read: the status line, header names and values, 1xx heads,
// the body and the trailers, one after another.
func agentSees(t testing.TB, raw string) string {
	t.Helper()
	var sb strings.Builder
	sb.WriteString(raw) // the bytes as framed on the wire
	br := bufio.NewReader(strings.NewReader(raw))
	for {
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			return sb.String()
		}
		sb.WriteString(resp.Status)
		for k, vs := range resp.Header {
			sb.WriteString("\n" + k + ": " + strings.Join(vs, ", "))
		}
		if resp.StatusCode >= 200 {
			b, _ := io.ReadAll(resp.Body)
			sb.Write(b)
			for k, vs := range resp.Trailer {
				sb.WriteString("\n" + k + ": " + strings.Join(vs, ", "))
			}
			return sb.String()
		}
	}
}

// TestNothingOutsideTheBodyLeaks sends the secret in every part of a
// response that is not the body, as a hostile upstream would, in target and
// forward mode alike.
func TestNothingOutsideTheBodyLeaks(t *testing.T) {
	up := newRawUpstream(t)
	p := credProxy(t, []string{"127.0.0.1"}, nil)
	half := len(realToken) / 2
	cases := map[string][]string{
		"trailer": {"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTrailer: X-Tr\r\n\r\n2\r\nok\r\n0\r\nX-Tr: " + realToken + "\r\n\r\n"},
		"unannounced trailer": {"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\nX-Late: " + realToken + "\r\n\r\n"},
		"trailer split across writes": {"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\nX-Tr: " + realToken[:half], realToken[half:] + "\r\n\r\n"},
		"103 early hints": {"HTTP/1.1 103 Early Hints\r\nLink: </x?t=" + realToken + ">; rel=preload\r\n\r\n",
			"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"},
		"obs-folded header":      {"HTTP/1.1 200 OK\r\nX-Fold: " + realToken[:half] + "\r\n " + realToken[half:] + "\r\nContent-Length: 2\r\n\r\nok"},
		"obs-folded with a tab":  {"HTTP/1.1 200 OK\r\nX-Fold: a " + realToken[:half] + "\r\n\t" + realToken[half:] + " b\r\nContent-Length: 2\r\n\r\nok"},
		"secret as header name":  {"HTTP/1.1 200 OK\r\n" + realToken + ": x\r\nContent-Length: 2\r\n\r\nok"},
		"secret as trailer name": {"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTrailer: " + realToken + "\r\n\r\n2\r\nok\r\n0\r\n" + realToken + ": x\r\n\r\n"},
		"reason phrase":          {"HTTP/1.1 200 " + realToken + "\r\nContent-Length: 2\r\n\r\nok"},
		"odd status and reason":  {"HTTP/1.1 599 " + realToken + "\r\nContent-Length: 2\r\n\r\nok"},
		"malformed status line":  {"HTTP/1.1 2x0 " + realToken + "\r\nContent-Length: 2\r\n\r\nok"},
		"malformed header line":  {"HTTP/1.1 200 OK\r\n" + realToken + "\r\nContent-Length: 2\r\n\r\nok"},
		"garbage instead of HTTP": {realToken + "\r\n\r\n"},
		"bad chunk size":          {"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + realToken + "\r\n"},
	}
	for name, pieces := range cases {
		t.Run(name, func(t *testing.T) {
			up.answer(pieces...)
			assertNoSecret(t, name, []byte(agentSees(t, throughProxy(t, p, up))))
			assertAlive(t, p)
		})
	}
}
