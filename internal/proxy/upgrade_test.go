package proxy

import (
	"bufio"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

// TestUpgradeThroughForwardProxy: a protocol upgrade (WebSocket and the
// like) through the forward way in switches protocols end to end, and the
// bytes after the 101 flow both ways.
func TestUpgradeThroughForwardProxy(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Upgrade") != "echo" {
			http.Error(w, "want Upgrade: echo", http.StatusBadRequest)
			return
		}
		c, brw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			return
		}
		defer c.Close()
		fmt.Fprint(brw, "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n")
		brw.Flush()
		line, _ := brw.ReadString('\n')
		fmt.Fprintf(brw, "echo:%s", line)
		brw.Flush()
	}))
	defer up.Close()
	p := startProxy(t, nil)
	c, err := net.Dial("tcp", p.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	fmt.Fprintf(c, "GET %s/ws HTTP/1.1\r\nHost: %s\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n", up.URL, up.Listener.Addr())
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusSwitchingProtocols || resp.Header.Get("Upgrade") != "echo" {
		t.Fatalf("got %s %v", resp.Status, resp.Header)
	}
	fmt.Fprint(c, "hello\n")
	got, err := br.ReadString('\n')
	if err != nil || got != "echo:hello\n" {
		t.Fatalf("after the upgrade: %q %v", got, err)
	}
	c.Close()
	rec := p.lastRecord(t, 1)
	if rec.Status != http.StatusSwitchingProtocols || rec.Mode != "forward" || rec.BytesIn != int64(len("hello\n")) || rec.BytesOut != int64(len("echo:hello\n")) {
		t.Fatalf("record: %+v", rec)
	}
}

// TestUpgradeRefusedWhileRedacting: with credentials configured, an upgraded
// stream could carry a secret back unscanned, so the switch is refused.
func TestUpgradeRefusedWhileRedacting(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, brw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			return
		}
		defer c.Close()
		fmt.Fprint(brw, "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n"+realToken)
		brw.Flush()
	}))
	defer up.Close()
	p := credProxy(t, []string{"api.github.com"}, nil)
	resp := rawExchange(t, p.addr, fmt.Sprintf("GET %s/ws HTTP/1.1\r\nHost: %s\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n", up.URL, up.Listener.Addr()))
	if e := decodeError(t, resp); resp.StatusCode != http.StatusBadGateway || e.Reason != "unscannable_upgrade" {
		t.Fatalf("got %d %+v", resp.StatusCode, e)
	}
}
