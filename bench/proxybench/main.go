// Command proxybench measures what the proxy adds, in one run on loopback:
// requests per second and p50/p99 latency for small requests sent directly
// and through each of the proxy's three ways in, and time to first chunk and
// per-chunk delay of a streamed response, directly and through the proxy.
//
// It runs the real slapenir binary (built by bench/proxy.sh) as a separate
// process, so the figures include everything a deployment pays.
package main

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/slapenir/slapenir/internal/pki/devca"
)

// stops are the proxies to stop however the run ends: os.Exit skips defers.
var stops []func()

func fail(args ...any) {
	fmt.Fprintln(os.Stderr, append([]any{"proxybench:"}, args...)...)
	for _, stop := range stops {
		stop()
	}
	os.Exit(1)
}

func main() {
	bin := flag.String("bin", "./slapenir", "slapenir binary to benchmark")
	n := flag.Int("n", 20000, "requests per scenario")
	conc := flag.Int("c", 8, "concurrent clients")
	size := flag.Int("size", 1024, "response size in bytes for the small-request scenarios")
	chunks := flag.Int("chunks", 200, "chunks in the streaming scenario")
	flag.Parse()

	payload := strings.Repeat("x", *size)
	mux := http.NewServeMux()
	mux.HandleFunc("/small", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, payload) })
	mux.HandleFunc("/stream", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/x-ndjson")
		f := w.(http.Flusher)
		for i := 0; i < *chunks; i++ {
			fmt.Fprintf(w, "{\"i\":%d,\"sent\":%d}\n", i, time.Now().UnixNano())
			f.Flush()
			time.Sleep(2 * time.Millisecond)
		}
	})
	up := httptest.NewServer(mux)
	defer up.Close()
	upTLS := httptest.NewUnstartedServer(mux)
	upTLS.StartTLS()
	defer upTLS.Close()

	proxyAddr, _, stop := startProxy(*bin, upTLS.URL, false)
	stops = append(stops, stop)
	defer stop()
	proxyURL := &url.URL{Scheme: "http", Host: proxyAddr}
	mtlsAddr, mtlsClient, stopMTLS := startProxy(*bin, upTLS.URL, true)
	stops = append(stops, stopMTLS)
	defer stopMTLS()
	mtlsURL := &url.URL{Scheme: "https", Host: mtlsAddr}

	fmt.Printf("# proxybench: %d requests × %d clients, %d-byte responses; %d-chunk stream\n\n", *n, *conc, *size, *chunks)
	fmt.Println("| scenario | req/s | p50 | p99 | added p50 |")
	fmt.Println("|---|---:|---:|---:|---:|")
	tlsCfg := &tls.Config{RootCAs: upTLS.Client().Transport.(*http.Transport).TLSClientConfig.RootCAs}
	direct := run("direct", *n, *conc, transport(nil, nil), func() *http.Request { return get(up.URL + "/small") }, 0)
	run("forward (absolute-form)", *n, *conc, transport(proxyURL, nil), func() *http.Request { return get(up.URL + "/small") }, direct)
	run("target (X-Target-URL)", *n, *conc, transport(nil, nil), func() *http.Request {
		r := get("http://" + proxyAddr + "/small")
		r.Header.Set("X-Target-URL", up.URL)
		return r
	}, direct)
	run("forward over mTLS (keep-alive)", *n, *conc, transport(mtlsURL, mtlsClient), func() *http.Request { return get(up.URL + "/small") }, direct)
	// New connections: mTLS's cost is shown over a new plain connection's,
	// with a full handshake and with the session resumed, as the relay
	// resumes it.
	plainNew := handshakes("forward (plain), new connection each", *n/10, transport(proxyURL, nil), up.URL+"/small", direct)
	handshakes("forward over mTLS, new connection each, full handshake (added: over plain new)", *n/10, transport(mtlsURL, mtlsClient), up.URL+"/small", plainNew)
	resuming := mtlsClient.Clone()
	resuming.ClientSessionCache = tls.NewLRUClientSessionCache(8)
	handshakes("forward over mTLS, new connection each, resumed (added: over plain new)", *n/10, transport(mtlsURL, resuming), up.URL+"/small", plainNew)
	directTLS := run("direct TLS", *n, *conc, transport(nil, tlsCfg), func() *http.Request { return get(upTLS.URL + "/small") }, 0)
	run("connect (TLS tunnel)", *n, *conc, transport(proxyURL, tlsCfg), func() *http.Request { return get(upTLS.URL + "/small") }, directTLS)

	fmt.Println()
	fmt.Println("| stream | first chunk | per-chunk delay p50 | p99 | max |")
	fmt.Println("|---|---:|---:|---:|---:|")
	stream("direct", transport(nil, nil), get(up.URL+"/stream"))
	stream("through proxy (forward)", transport(proxyURL, nil), get(up.URL+"/stream"))
	r := get("http://" + proxyAddr + "/stream")
	r.Header.Set("X-Target-URL", up.URL)
	stream("through proxy (target)", transport(nil, nil), r)
}

// handshakes sends sequential requests each on a fresh connection, so every
// one pays the mTLS handshake.
func handshakes(name string, n int, tr *http.Transport, u string, baseP50 time.Duration) time.Duration {
	tr.DisableKeepAlives = true
	return run(name, n, 1, tr, func() *http.Request { return get(u) }, baseP50)
}

func get(u string) *http.Request {
	r, err := http.NewRequest("GET", u, nil)
	if err != nil {
		panic(err)
	}
	return r
}

func transport(proxy *url.URL, tlsCfg *tls.Config) *http.Transport {
	t := &http.Transport{MaxIdleConnsPerHost: 64, DisableCompression: true, TLSClientConfig: tlsCfg}
	if proxy != nil {
		t.Proxy = http.ProxyURL(proxy)
	}
	return t
}

// run sends n requests from conc clients and prints throughput and latency;
// it returns the p50 so later rows can show what the proxy added.
func run(name string, n, conc int, tr *http.Transport, mk func() *http.Request, baseP50 time.Duration) time.Duration {
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr}
	for i := 0; i < 200; i++ { // warm the connection pools
		do(client, mk())
	}
	lat := make([]time.Duration, n)
	var wg sync.WaitGroup
	next := make(chan int)
	start := time.Now()
	for c := 0; c < conc; c++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				t0 := time.Now()
				do(client, mk())
				lat[i] = time.Since(t0)
			}
		}()
	}
	for i := 0; i < n; i++ {
		next <- i
	}
	close(next)
	wg.Wait()
	elapsed := time.Since(start)
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	p50, p99 := lat[n/2], lat[n*99/100]
	added := "—"
	if baseP50 > 0 {
		added = fmt.Sprintf("%+.3f ms", ms(p50-baseP50))
	}
	fmt.Printf("| %s | %.0f | %.3f ms | %.3f ms | %s |\n", name, float64(n)/elapsed.Seconds(), ms(p50), ms(p99), added)
	return p50
}

func do(c *http.Client, r *http.Request) {
	resp, err := c.Do(r)
	if err != nil {
		fail(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 {
		fail("status", resp.Status)
	}
}

// stream measures time to the first chunk and, for every chunk, the delay
// between the upstream writing it and the client reading it.
func stream(name string, tr *http.Transport, r *http.Request) {
	defer tr.CloseIdleConnections()
	t0 := time.Now()
	resp, err := (&http.Client{Transport: tr}).Do(r)
	if err != nil {
		fail(err)
	}
	defer resp.Body.Close()
	var first time.Duration
	var delays []time.Duration
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		now := time.Now()
		if first == 0 {
			first = now.Sub(t0)
		}
		line := sc.Text()
		i := strings.Index(line, `"sent":`)
		sent, _ := strconv.ParseInt(strings.TrimSuffix(line[i+7:], "}"), 10, 64)
		delays = append(delays, now.Sub(time.Unix(0, sent)))
	}
	sort.Slice(delays, func(i, j int) bool { return delays[i] < delays[j] })
	fmt.Printf("| %s | %.3f ms | %.3f ms | %.3f ms | %.3f ms |\n", name, ms(first), ms(delays[len(delays)/2]), ms(delays[len(delays)*99/100]), ms(delays[len(delays)-1]))
}

func ms(d time.Duration) float64 { return float64(d.Nanoseconds()) / 1e6 }

// startProxy runs the slapenir binary with loopback upstreams allowed, the
// TLS upstream's port open to CONNECT, and the audit log in a temp dir:
// plain HTTP, or mTLS from a development CA in a temp state dir, in which
// case it returns a client TLS configuration with a certificate from it.
func startProxy(bin, tlsURL string, mtls bool) (string, *tls.Config, func()) {
	dir, err := os.MkdirTemp("", "proxybench")
	if err != nil {
		panic(err)
	}
	u, _ := url.Parse(tlsURL)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	cfg := fmt.Sprintf(`listen: %q
policy:
  private_allow: ["127.0.0.1/32"]
  connect_ports: [443, %s]
audit:
  file: %q
limits:
  rate_per_second: 0
`, addr, u.Port(), filepath.Join(dir, "audit.jsonl"))
	cfgPath := filepath.Join(dir, "proxy.yaml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		panic(err)
	}
	args := []string{"proxy", "--config", cfgPath, "--insecure-plaintext"}
	var clientTLS *tls.Config
	if mtls {
		state := filepath.Join(dir, "state")
		args = []string{"proxy", "--config", cfgPath, "--state-dir", state}
		ca, err := devca.Ensure(state)
		if err != nil {
			panic(err)
		}
		b, err := ca.Issue(devca.Request{CommonName: "bench-agent", Usage: devca.Client})
		if err != nil {
			panic(err)
		}
		roots := x509.NewCertPool()
		roots.AddCert(ca.Root)
		clientTLS = &tls.Config{RootCAs: roots, Certificates: []tls.Certificate{{Certificate: [][]byte{b.Chain[0].Raw}, PrivateKey: b.Key}}}
	}
	cmd := exec.Command(bin, args...)
	cmd.Stderr = io.Discard
	if err := cmd.Start(); err != nil {
		fail("cannot start the proxy:", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	scheme := "http"
	if mtls {
		scheme = "https"
	}
	health := &http.Client{Transport: &http.Transport{TLSClientConfig: clientTLS}}
	for ctx.Err() == nil {
		if resp, err := health.Get(scheme + "://" + addr + "/health"); err == nil {
			resp.Body.Close()
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	return addr, clientTLS, func() {
		_ = cmd.Process.Signal(os.Interrupt)
		_ = cmd.Wait()
		os.RemoveAll(dir)
	}
}
