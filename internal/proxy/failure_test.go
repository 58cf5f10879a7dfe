package proxy

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/slapenir/slapenir/internal/config"
)

func TestUpstreamUnreachable(t *testing.T) {
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	dead := ln.Addr().String()
	ln.Close() // nothing listens here now
	p := startProxy(t, nil)
	for _, mode := range []string{"forward", "target"} {
		resp := sendVia(t, p, mode, "http://"+dead)
		e := decodeError(t, resp)
		if resp.StatusCode != 502 || e.Reason != "upstream_failed" || !strings.Contains(e.Error, dead) || !strings.Contains(e.Error, "refused") {
			t.Fatalf("%s: got %d %+v, want 502 naming %s and the cause", mode, resp.StatusCode, e, dead)
		}
	}
	recs := p.records(t, 2)
	for _, r := range recs {
		if r.Decision != "error" || r.Status != 502 || !strings.Contains(r.Error, "refused") {
			t.Fatalf("record: %+v", r)
		}
	}
}

// TestUpstreamDiesMidStream: the client must see the stream break (not a
// clean end it could mistake for a whole answer), and the audit record says so.
func TestUpstreamDiesMidStream(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/x-ndjson")
		fmt.Fprintln(w, `{"token":"a"}`)
		w.(http.Flusher).Flush()
		conn, _, err := http.NewResponseController(w).Hijack()
		if err == nil {
			conn.Close() // die without ending the chunked body
		}
	}))
	defer up.Close()
	p := startProxy(t, nil)
	resp, err := p.client().Get(up.URL + "/api/chat")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	line, err := bufio.NewReader(resp.Body).ReadString('\n')
	if line != "{\"token\":\"a\"}\n" {
		t.Fatalf("first line %q (%v)", line, err)
	}
	if _, err := io.ReadAll(resp.Body); err == nil {
		t.Fatal("the client saw a clean end of a stream the upstream broke off")
	}
	rec := p.lastRecord(t, 1)
	if rec.Decision != "error" || rec.Reason != "upstream_aborted" || !strings.Contains(rec.Error, "the upstream broke off the response after 14 bytes") {
		t.Fatalf("record: %+v, want the upstream named as the side that ended it", rec)
	}
}

// TestStreamCutsSayWhichSide: a stream the client hangs up on mid-way, and
// one cut when shutdown_grace runs out, are each recorded with the side
// that ended it and why (they all read "stream aborted: net/http: abort
// Handler" before).
func TestStreamCutsSayWhichSide(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/x-ndjson")
		for {
			if _, err := fmt.Fprintln(w, `{"token":"a"}`); err != nil {
				return
			}
			w.(http.Flusher).Flush()
			select {
			case <-r.Context().Done():
				return
			case <-time.After(20 * time.Millisecond):
			}
		}
	}))
	defer up.Close()

	cfg := loopbackConfig()
	cfg.Limits.ShutdownGrace = config.Duration(300 * time.Millisecond)
	p := startProxy(t, cfg)
	// The client reads a line and hangs up.
	c, err := net.Dial("tcp", p.addr)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(c, "GET %s/gone HTTP/1.1\r\nHost: x\r\n\r\n", up.URL)
	br := bufio.NewReader(c)
	if resp, err := http.ReadResponse(br, nil); err != nil || resp.StatusCode != 200 {
		t.Fatalf("%v %v", resp, err)
	}
	br.ReadString('\n')
	c.(*net.TCPConn).SetLinger(0)
	c.Close()
	rec := findRecord(t, p.records(t, 1), "client_closed")
	if rec.Decision != decisionError || !strings.Contains(rec.Error, "the client went away after") {
		t.Fatalf("client hung up: %+v", rec)
	}

	// A stream still running when the proxy shuts down and its grace ends.
	resp, err := p.client().Get(up.URL + "/long")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	_ = p.srv.Shutdown(ctx)
	rec = findRecord(t, p.records(t, 2), "shutdown_cut")
	if rec.Decision != decisionError || !strings.Contains(rec.Error, "limits.shutdown_grace (300ms) ran out") {
		t.Fatalf("cut at shutdown: %+v", rec)
	}
}

// TestClientGoneCancelsUpstream: when the agent hangs up, the upstream request
// is cancelled instead of running on for nobody.
func TestClientGoneCancelsUpstream(t *testing.T) {
	started := make(chan struct{})
	cancelled := make(chan struct{})
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		close(started)
		select {
		case <-r.Context().Done():
			close(cancelled)
		case <-time.After(10 * time.Second):
		}
	}))
	defer up.Close()
	p := startProxy(t, nil)
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, "GET", up.URL+"/slow", nil)
	go func() {
		<-started
		cancel()
	}()
	_, _ = p.client().Do(req)
	select {
	case <-cancelled:
	case <-time.After(8 * time.Second):
		t.Fatal("the upstream request was not cancelled when the client went away")
	}
	rec := p.lastRecord(t, 1)
	if rec.Reason != "client_closed" {
		t.Fatalf("record: %+v", rec)
	}
}

func TestFailureKind(t *testing.T) {
	for err, want := range map[error]string{
		&net.DNSError{Err: "no such host", Name: "x.invalid"}:                               "dns",
		fmt.Errorf("policy: dial: %w", &net.OpError{Op: "dial", Err: syscall.ECONNREFUSED}): "refused",
		&net.OpError{Op: "read", Err: syscall.ECONNRESET}:                                   "reset",
		fmt.Errorf("x: %w", &tls.CertificateVerificationError{Err: errors.New("bad")}):      "tls",
		&net.OpError{Op: "dial", Err: os.ErrDeadlineExceeded}:                               "timeout",
		errors.New("something else"):                                                        "other",
	} {
		if got := failureKind(err); got != want {
			t.Errorf("failureKind(%v) = %q, want %q", err, got, want)
		}
	}
}
