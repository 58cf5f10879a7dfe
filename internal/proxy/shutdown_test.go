package proxy

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

// TestGracefulShutdown: a request in flight when shutdown starts finishes,
// new connections are refused, and its audit record is written.
func TestGracefulShutdown(t *testing.T) {
	release := make(chan struct{})
	inFlight := make(chan struct{})
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		close(inFlight)
		<-release
		io.WriteString(w, "finished")
	}))
	defer up.Close()
	p := startProxy(t, nil)
	type result struct {
		body string
		err  error
	}
	got := make(chan result, 1)
	go func() {
		resp, err := p.client().Get(up.URL + "/slow")
		if err != nil {
			got <- result{err: err}
			return
		}
		b, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		got <- result{string(b), err}
	}()
	<-inFlight
	shut := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		shut <- p.srv.Shutdown(ctx)
	}()
	// Wait until the listener is closed, then let the request finish.
	deadline := time.Now().Add(5 * time.Second)
	for {
		if _, err := http.Get("http://" + p.addr + "/health"); err != nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("proxy still accepts connections during shutdown")
		}
		time.Sleep(10 * time.Millisecond)
	}
	close(release)
	r := <-got
	if r.err != nil || r.body != "finished" {
		t.Fatalf("in-flight request: %q %v", r.body, r.err)
	}
	if err := <-shut; err != nil {
		t.Fatalf("shutdown: %v", err)
	}
	if rec := p.lastRecord(t, 1); rec.Status != 200 || rec.Path != "/slow" {
		t.Fatalf("record: %+v", rec)
	}
}

// TestShutdownCutsTunnelsAfterGrace: an open tunnel may outlive the grace
// period only until it ends; then it is cut and recorded.
func TestShutdownCutsTunnelsAfterGrace(t *testing.T) {
	ln := listenLoopback(t)
	defer ln.Close()
	go func() {
		c, err := ln.Accept()
		if err == nil {
			_, _ = io.Copy(c, c)
		}
	}()
	cfg := loopbackConfig()
	cfg.Policy.ConnectPorts = []int{portOf(t, "http://"+ln.Addr().String())}
	p := startProxy(t, cfg)
	c := openTunnel(t, p.addr, ln.Addr().String())
	buf := make([]byte, 64)
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	_ = p.srv.Shutdown(ctx)
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Read(buf); err == nil {
		t.Fatal("the tunnel survived the end of the grace period")
	}
	if rec := p.lastRecord(t, 1); rec.Mode != "connect" {
		t.Fatalf("tunnel record: %+v", rec)
	}
}
