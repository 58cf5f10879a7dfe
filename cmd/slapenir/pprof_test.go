package main

import (
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"
)

func TestPprofLoopbackOnly(t *testing.T) {
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	for _, addr := range []string{"0.0.0.0:0", ":0", "192.0.2.1:0", "nonsense"} {
		if _, stop, err := servePprof(addr, "127.0.0.1:3000", log); err == nil {
			stop()
			t.Errorf("servePprof(%q) served the profiler off loopback", addr)
		} else if !strings.Contains(err.Error(), "--pprof") {
			t.Errorf("servePprof(%q) error does not name the flag: %v", addr, err)
		}
	}
	if _, _, err := servePprof("127.0.0.1:3000", "127.0.0.1:3000", log); err == nil || !strings.Contains(err.Error(), "own listen address") {
		t.Errorf("pprof on the proxy's own address: %v", err)
	}
}

func TestPprofServesProfiles(t *testing.T) {
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	addr, stop, err := servePprof("127.0.0.1:0", "127.0.0.1:3000", log)
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	resp, err := http.Get("http://" + addr.String() + "/debug/pprof/goroutine?debug=1")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 || !strings.Contains(string(b), "goroutine profile:") {
		t.Fatalf("pprof answered %d: %.200s", resp.StatusCode, b)
	}
}
