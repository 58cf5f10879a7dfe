package proxy

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestRedactedSmallBodyKeepsItsLength: a small body of known length from a
// credential's host is redacted whole and goes out with the redacted
// length, not chunked (issue 13: chunking and flushing every write halved
// the proxy's rate with a credential on) — also when the secret arrives
// split across two writes. Compressed bodies, bodies of unknown length and
// HEAD answers keep their own framing.
func TestRedactedSmallBodyKeepsItsLength(t *testing.T) {
	up := newRawUpstream(t)
	p := credProxy(t, []string{"127.0.0.1"}, nil)
	// Larger than net/http's 2 KiB buffer, under which it would work out a
	// length by itself.
	pad := strings.Repeat("x", 4<<10)
	body := `{"token":"` + realToken + `","pad":"` + pad + `"}`
	want := `{"token":"[REDACTED]","pad":"` + pad + `"}`
	head := "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: " + strconv.Itoa(len(body)) + "\r\n\r\n"
	for _, mode := range []string{modeTarget, modeForward} {
		up.answer(head+body[:14], body[14:])
		resp := parseResponse(t, throughProxy(t, p, up, mode))
		got, err := io.ReadAll(resp.Body)
		if err != nil || string(got) != want {
			t.Fatalf("%s: body %q, %v; want %q", mode, got, err, want)
		}
		if resp.ContentLength != int64(len(want)) || len(resp.TransferEncoding) != 0 {
			t.Errorf("%s: Content-Length %d, Transfer-Encoding %v; want %d and none", mode, resp.ContentLength, resp.TransferEncoding, len(want))
		}
	}
	if rec := p.lastRecord(t, 2); rec.Redactions != 1 || rec.Status != http.StatusOK {
		t.Errorf("record: %d redactions, status %d; want 1 and 200", rec.Redactions, rec.Status)
	}

	// Chunked from upstream: the length is unknown, it stays chunked.
	up.answer("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + strconv.FormatInt(int64(len(body)), 16) + "\r\n" + body + "\r\n0\r\n\r\n")
	resp := parseResponse(t, throughProxy(t, p, up, modeTarget))
	if got, _ := io.ReadAll(resp.Body); string(got) != want || resp.ContentLength != -1 {
		t.Errorf("chunked: body %q, Content-Length %d; want %q, unknown", got, resp.ContentLength, want)
	}

	// HEAD: the announced length of a body that is not sent stays the
	// upstream's business; nothing is read, nothing waits.
	up.answer(head)
	raw := rawRequest(t, p.addr, "HEAD /x HTTP/1.1\r\nHost: proxy\r\nX-Target-URL: http://"+up.addr()+"\r\nConnection: close\r\n\r\n")
	if !strings.HasPrefix(raw, "HTTP/1.1 200 ") {
		t.Errorf("HEAD: %q", raw)
	}
}

// TestCutShortSmallBodyIsAnUpstreamError: a small body that ends before the
// length it announced is answered 502 naming what happened, not passed on
// truncated, and the proxy serves on.
func TestCutShortSmallBodyIsAnUpstreamError(t *testing.T) {
	up := newRawUpstream(t)
	p := credProxy(t, []string{"127.0.0.1"}, nil)
	up.answer("HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly ten b")
	resp := parseResponse(t, throughProxy(t, p, up, modeTarget))
	if resp.StatusCode != http.StatusBadGateway {
		t.Fatalf("status %d, want 502", resp.StatusCode)
	}
	if e := decodeError(t, resp); !strings.Contains(e.Error, "10 of the 100 bytes") {
		t.Errorf("error %q does not say how the body was cut", e.Error)
	}
	if rec := p.lastRecord(t, 1); rec.Status != http.StatusBadGateway || rec.Decision != decisionError {
		t.Errorf("record: status %d, decision %q; want 502, error", rec.Status, rec.Decision)
	}
	assertAlive(t, p)
}

// gatedUpstream answers every request with head and first, then waits for
// release before sending rest: what reaches the agent meanwhile is what the
// proxy flushed.
func gatedUpstream(t *testing.T, head, first, rest string) (addr string, release chan struct{}) {
	t.Helper()
	ln := listenLoopback(t)
	t.Cleanup(func() { ln.Close() })
	release = make(chan struct{})
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		req, err := http.ReadRequest(bufio.NewReader(c))
		if err != nil {
			return
		}
		drain(req)
		if _, err := io.WriteString(c, head+first); err != nil {
			return
		}
		<-release
		_, _ = io.WriteString(c, rest)
	}()
	return ln.Addr().String(), release
}

// TestOnlyStreamsAreFlushedWriteByWrite: a redacted body of known length is
// not a stream and is not flushed after every write (its first kilobyte
// waits in the proxy's buffers for the rest); one of unknown length, or of
// a streaming content type, reaches the agent piece by piece as the
// upstream sends it.
func TestOnlyStreamsAreFlushedWriteByWrite(t *testing.T) {
	p := credProxy(t, []string{"127.0.0.1"}, nil)
	// Ends in a byte no form of a secret can begin with, so the redactor
	// holds none of it back.
	first := strings.Repeat("a", 999) + "\n"
	rest := strings.Repeat("b", 200<<10) + realToken
	known := "Content-Length: " + strconv.Itoa(len(first)+len(rest)) + "\r\n\r\n"
	chunk := func(s string) string { return strconv.FormatInt(int64(len(s)), 16) + "\r\n" + s + "\r\n" }
	for _, c := range []struct {
		name, head, first, rest string
		flushed                 bool
	}{
		{"known length", "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n" + known, first, rest, false},
		{"known length, event stream", "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n" + known, first, rest, true},
		{"unknown length", "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\n\r\n", chunk(first), chunk(rest) + "0\r\n\r\n", true},
	} {
		t.Run(c.name, func(t *testing.T) {
			addr, release := gatedUpstream(t, c.head, c.first, c.rest)
			conn, err := net.Dial("tcp", p.addr)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			io.WriteString(conn, "GET /x HTTP/1.1\r\nHost: proxy\r\nX-Target-URL: http://"+addr+"\r\nConnection: close\r\n\r\n")
			// A flushed first kilobyte is waited for (however slow the
			// machine); one that is held back is given a quarter of a
			// second to show up, which it must not.
			wait := 250 * time.Millisecond
			if c.flushed {
				wait = 10 * time.Second
			}
			var early []byte
			buf := make([]byte, 64<<10)
			_ = conn.SetReadDeadline(time.Now().Add(wait))
			for !strings.Contains(string(early), first) {
				n, err := conn.Read(buf)
				early = append(early, buf[:n]...)
				if errors.Is(err, os.ErrDeadlineExceeded) {
					break
				}
				if err != nil {
					t.Fatalf("read before the rest was sent: %v", err)
				}
			}
			gotFirst := strings.Contains(string(early), first)
			if gotFirst != c.flushed {
				t.Errorf("the first kilobyte reached the agent before the rest was sent: %v, want %v (got %d bytes)", gotFirst, c.flushed, len(early))
			}
			close(release)
			_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
			late, err := io.ReadAll(conn)
			if err != nil {
				t.Fatal(err)
			}
			resp, err := http.ReadResponse(bufio.NewReader(strings.NewReader(string(early)+string(late))), nil)
			if err != nil {
				t.Fatal(err)
			}
			body, err := io.ReadAll(resp.Body)
			if err != nil || string(body) != first+strings.Repeat("b", 200<<10)+"[REDACTED]" {
				t.Errorf("body: %d bytes, %v; want the whole body, redacted", len(body), err)
			}
		})
	}
}

// TestWholeBodiesDoNotShareBuffers: whole bodies are read into pooled
// buffers; many at once must each get their own bytes back.
func TestWholeBodiesDoNotShareBuffers(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body := r.URL.Path + " " + realToken + " " + strings.Repeat(r.URL.Path, 2000)
		w.Header().Set("Content-Length", strconv.Itoa(len(body)))
		io.WriteString(w, body)
	}))
	t.Cleanup(up.Close)
	p := credProxy(t, []string{"127.0.0.1"}, nil)
	c := p.client()
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 25 {
				path := fmt.Sprintf("/g%di%d", g, i)
				resp, err := c.Get(up.URL + path)
				if err != nil {
					t.Error(err)
					return
				}
				got, err := io.ReadAll(resp.Body)
				resp.Body.Close()
				if want := path + " [REDACTED] " + strings.Repeat(path, 2000); err != nil || string(got) != want {
					t.Errorf("%s: got %d bytes (%v), not its own body", path, len(got), err)
					return
				}
			}
		})
	}
	wg.Wait()
}

// TestWholeBodyBufferIsHeldUntilClose: the pooled buffer behind a whole
// body goes back only when the body is closed, not while ReverseProxy may
// still be writing from it.
func TestWholeBodyBufferIsHeldUntilClose(t *testing.T) {
	p := credProxy(t, []string{"127.0.0.1"}, nil)
	body := "hello " + realToken + strings.Repeat(".", smallPooled)
	resp := &http.Response{StatusCode: 200, Header: http.Header{}, ContentLength: int64(len(body)),
		Body: io.NopCloser(strings.NewReader(body)), Request: httptest.NewRequest("GET", "http://x/", nil)}
	x := &exchange{w: &responseRecorder{}}
	if err := p.srv.cur.Load().creds.redactResponse(resp, x, p.srv.decoding); err != nil {
		t.Fatal(err)
	}
	held := resp.Body.(*trailerScrubber).whole
	for range 8 {
		if b := wholePool.Get().(*[]byte); b == held {
			t.Fatal("the buffer of an open body is back in the pool")
		}
	}
	if got, _ := io.ReadAll(resp.Body); string(got) != "hello [REDACTED]"+strings.Repeat(".", smallPooled) {
		t.Fatalf("body %q", got)
	}
	resp.Body.Close()
}
