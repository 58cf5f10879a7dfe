package proxy

import (
	"bufio"
	"crypto/tls"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// lockstepUpstream streams n NDJSON lines, flushing each, and sends line i+1
// only after the test has received line i. A proxy that buffered anything
// would deadlock this exchange, which the test's deadline turns into a
// failure: arrival order proves streaming, not timing.
func lockstepUpstream(n int, tlsToo bool) (*httptest.Server, chan struct{}) {
	ack := make(chan struct{})
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/x-ndjson")
		for i := 0; i < n; i++ {
			fmt.Fprintf(w, "{\"token\":%d,\"done\":%v}\n", i, i == n-1)
			w.(http.Flusher).Flush()
			if i == n-1 {
				return
			}
			select {
			case <-ack:
			case <-r.Context().Done():
				return
			case <-time.After(10 * time.Second):
				return
			}
		}
	})
	if tlsToo {
		return httptest.NewTLSServer(h), ack
	}
	return httptest.NewServer(h), ack
}

func TestStreamingEachChunkFlushed(t *testing.T) {
	const n = 5
	for _, mode := range []string{"forward", "target", "connect"} {
		t.Run(mode, func(t *testing.T) {
			up, ack := lockstepUpstream(n, mode == "connect")
			defer up.Close()
			cfg := loopbackConfig()
			cfg.Policy.ConnectPorts = []int{portOf(t, up.URL)}
			p := startProxy(t, cfg)

			var req *http.Request
			client := p.client()
			switch mode {
			case "forward":
				req, _ = http.NewRequest("POST", up.URL+"/api/chat", nil)
			case "target":
				req, _ = http.NewRequest("POST", "http://"+p.addr+"/api/chat", nil)
				req.Header.Set("X-Target-URL", up.URL)
				client = http.DefaultClient
			case "connect":
				req, _ = http.NewRequest("POST", up.URL+"/api/chat", nil)
				client.Transport.(*http.Transport).TLSClientConfig = &tls.Config{RootCAs: poolOf(up.Certificate())}
			}
			resp, err := client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			lines := make(chan string)
			go func() {
				sc := bufio.NewScanner(resp.Body)
				for sc.Scan() {
					lines <- sc.Text()
				}
				close(lines)
			}()
			start := time.Now()
			for i := 0; i < n; i++ {
				select {
				case line, ok := <-lines:
					if !ok {
						t.Fatalf("stream ended after %d lines", i)
					}
					want := fmt.Sprintf("{\"token\":%d,\"done\":%v}", i, i == n-1)
					if line != want {
						t.Fatalf("line %d = %q, want %q", i, line, want)
					}
					t.Logf("chunk %d arrived at +%v", i, time.Since(start))
				case <-time.After(8 * time.Second):
					t.Fatalf("chunk %d never arrived: the proxy is holding back a flushed chunk", i)
				}
				if i < n-1 {
					ack <- struct{}{}
				}
			}
		})
	}
}

// TestStreamsAfterImmediateAnswer: an upstream that starts its answer the
// moment it has read the request body (as Ollama does) must not have its
// stream cut by net/http closing the request body under the transport.
func TestStreamsAfterImmediateAnswer(t *testing.T) {
	const lines, streams = 500, 100
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.ReadAll(r.Body)
		w.Header().Set("Content-Type", "application/x-ndjson")
		for i := 0; i < lines; i++ {
			fmt.Fprintf(w, "{\"i\":%d}\n", i)
			w.(http.Flusher).Flush()
		}
	}))
	defer up.Close()
	p := startProxy(t, nil)
	for s := 0; s < streams; s++ {
		req, _ := http.NewRequest("POST", "http://"+p.addr+"/api/chat", strings.NewReader(`{"model":"m","messages":[]}`))
		req.Header.Set("X-Target-URL", up.URL)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
			n++
		}
		resp.Body.Close()
		if n != lines || sc.Err() != nil {
			t.Fatalf("stream %d cut after %d of %d lines: %v", s, n, lines, sc.Err())
		}
	}
}
