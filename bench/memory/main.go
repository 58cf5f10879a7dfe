// Command memory measures what the proxy holds (issue 13, aim 4), on the
// real slapenir binary with a credential configured for the origin so every
// response byte is scanned:
//
//   - peak RSS of one 4 GiB stream through the redactor;
//   - bytes per idle keep-alive client connection (heap and stacks in use,
//     from the proxy's own runtime statistics, and RSS);
//   - RSS while 50 busy clients run beside those idle ones, sampled;
//   - with 100 clients reading a fast stream at 1 byte a second, what the
//     proxy holds and how late a normal client's lines arrive;
//   - peak RSS while 20 decompression bombs (gzip, deflate, br, zstd, and
//     zstd declaring a 512 MiB window) are decoded at once (issue 23).
//
// Usage: go run ./bench/memory -bin ./slapenir   (bench/memory.sh builds it);
// -only bombs runs the last measure alone.
package main

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/slapenir/slapenir/bench/benchproc"
)

func main() {
	bin := flag.String("bin", "./slapenir", "slapenir binary to measure")
	idle := flag.Int("idle", 1000, "idle keep-alive client connections")
	busy := flag.Int("busy", 50, "busy clients beside the idle ones")
	streamGiB := flag.Int("stream-gib", 4, "GiB in the scanned stream")
	slow := flag.Int("slow", 100, "clients reading 1 byte a second")
	bombs := flag.Int("bombs", 20, "decompression bombs decoded at once")
	only := flag.String("only", "", `run one measure alone: "bombs"`)
	kinds := flag.String("bomb-kinds", strings.Join(bombKinds, ","), "the bombs sent in turn")
	flag.Parse()
	bombKinds = strings.Split(*kinds, ",")

	origin := httptest.NewServer(http.HandlerFunc(serveOrigin))
	defer origin.Close()
	p := benchproc.Start(*bin, `listen: %q
policy:
  private_allow: ["127.0.0.1/32"]
audit:
  file: %q
limits:
  rate_per_second: 0
  max_tunnels: 4096
secrets:
  credentials:
    - name: bench
      env: BENCH_TOKEN
      hosts: [`+strconv.Quote(origin.Listener.Addr().String())+`]
`, false, []string{"BENCH_TOKEN=bench-real-token-0123456789abcdef"}, "--insecure-plaintext")
	defer p.Remove()

	fmt.Printf("# memory: real binary, one credential for the origin (every response scanned)\n\n")
	base := p.Stats()
	fmt.Printf("| measure | value |\n|---|---:|\n")
	fmt.Printf("| at rest: RSS | %s |\n", benchproc.MiB(base.RSS))
	if *only == "bombs" {
		bombsAtOnce(p, origin.Listener.Addr().String(), *bombs)
		return
	}

	// One long stream, every byte scanned: peak RSS.
	p.ResetPeak()
	c, err := net.Dial("tcp", p.Addr)
	if err != nil {
		fail(err)
	}
	size := int64(*streamGiB) << 30
	t0 := time.Now()
	got := roundTrip(c, "http://"+origin.Listener.Addr().String()+"/stream?bytes="+strconv.FormatInt(size, 10))
	c.Close()
	if got != size {
		fail(fmt.Sprintf("the stream delivered %d of %d bytes", got, size))
	}
	fmt.Printf("| one %d GiB stream scanned (%.0f MB/s): peak RSS | %s |\n", *streamGiB, float64(size)/1e6/time.Since(t0).Seconds(), benchproc.MiB(p.Stats().Peak))

	// Idle keep-alive connections, each after one request.
	conns := make([]net.Conn, 0, *idle)
	for range *idle {
		c, err := net.Dial("tcp", p.Addr)
		if err != nil {
			fail("dial:", err)
		}
		roundTrip(c, "http://"+origin.Listener.Addr().String()+"/1k")
		conns = append(conns, c)
	}
	time.Sleep(500 * time.Millisecond)
	held := p.Stats()
	n := int64(*idle)
	fmt.Printf("| %d idle keep-alive connections: heap+stacks per connection | %d B |\n", *idle, (held.Heap+held.Stack-base.Heap-base.Stack)/n)
	fmt.Printf("| … RSS per connection | %d B |\n", (held.RSS-base.RSS)/n)
	fmt.Printf("| … proxy goroutines | %d |\n", held.Goroutines)

	// Busy clients beside the idle ones: RSS sampled.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	var wg sync.WaitGroup
	var done atomic.Int64
	for range *busy {
		wg.Go(func() {
			c, err := net.Dial("tcp", p.Addr)
			if err != nil {
				return
			}
			defer c.Close()
			for ctx.Err() == nil {
				roundTrip(c, "http://"+origin.Listener.Addr().String()+"/1k")
				done.Add(1)
			}
		})
	}
	var rss []int64
	for ctx.Err() == nil {
		time.Sleep(500 * time.Millisecond)
		rss = append(rss, p.Stats().RSS)
	}
	wg.Wait()
	cancel()
	fmt.Printf("| %d busy + %d idle for 10 s (%d requests): RSS min–max | %s–%s |\n", *busy, *idle, done.Load(), benchproc.MiB(slices.Min(rss)), benchproc.MiB(slices.Max(rss)))
	for _, c := range conns {
		c.Close()
	}

	// Slow readers beside a normal one.
	before := p.Stats()
	var slowConns []net.Conn
	for range *slow {
		c, err := net.Dial("tcp", p.Addr)
		if err != nil {
			fail(err)
		}
		fmt.Fprintf(c, "GET http://%s/lines HTTP/1.1\r\nHost: %s\r\n\r\n", origin.Listener.Addr(), origin.Listener.Addr())
		slowConns = append(slowConns, c)
		go func() {
			b := make([]byte, 1)
			for {
				if _, err := c.Read(b); err != nil {
					return
				}
				time.Sleep(time.Second)
			}
		}()
	}
	time.Sleep(3 * time.Second)
	late := normalReader(p.Addr, origin.Listener.Addr().String(), 5*time.Second)
	during := p.Stats()
	for _, c := range slowConns {
		c.Close()
	}
	fmt.Printf("| %d clients reading 1 B/s of a fast stream: heap+stacks held | %s |\n", *slow, benchproc.MiB(during.Heap+during.Stack-before.Heap-before.Stack))
	fmt.Printf("| … a normal client's lines meanwhile: delay p50 / p99 / max | %s / %s / %s |\n", late[len(late)/2], late[len(late)*99/100], late[len(late)-1])
	bombsAtOnce(p, origin.Listener.Addr().String(), *bombs)
}

// serveOrigin: /1k, /stream?bytes=N (chunked, unknown length), /lines
// (NDJSON lines with their send time, as fast as the client takes them,
// for 30 s), /bomb?kind=K (a decompression bomb, see bombBodies).
func serveOrigin(w http.ResponseWriter, r *http.Request) {
	switch r.URL.Path {
	case "/bomb":
		serveBomb(w, r.URL.Query().Get("kind"))
	case "/1k":
		io.WriteString(w, strings.Repeat("x", 1024))
	case "/stream":
		n, _ := strconv.ParseInt(r.URL.Query().Get("bytes"), 10, 64)
		chunk := []byte(strings.Repeat("lorem ipsum dolor sit amet, consectetur adipiscing elit\n", 585))
		for sent := int64(0); sent < n; {
			k := min(int64(len(chunk)), n-sent)
			if _, err := w.Write(chunk[:k]); err != nil {
				return
			}
			sent += k
		}
	case "/lines":
		w.Header().Set("Content-Type", "application/x-ndjson")
		f := w.(http.Flusher)
		for end := time.Now().Add(30 * time.Second); time.Now().Before(end); {
			if _, err := fmt.Fprintf(w, "{\"sent\":%d}\n", time.Now().UnixNano()); err != nil {
				return
			}
			f.Flush()
			time.Sleep(time.Millisecond)
		}
	}
}

// roundTrip sends one forward-proxy GET on c and reads the whole response,
// returning the body's length.
func roundTrip(c net.Conn, u string) int64 {
	host := strings.SplitN(strings.TrimPrefix(u, "http://"), "/", 2)[0]
	fmt.Fprintf(c, "GET %s HTTP/1.1\r\nHost: %s\r\n\r\n", u, host)
	resp, err := http.ReadResponse(bufio.NewReaderSize(c, 64<<10), nil)
	if err != nil {
		fail("response:", err)
	}
	n, err := io.Copy(io.Discard, resp.Body)
	if err != nil {
		fail("body:", err)
	}
	return n
}

// normalReader reads the line stream for d and returns each line's delay,
// sorted.
func normalReader(proxy, origin string, d time.Duration) []time.Duration {
	c, err := net.Dial("tcp", proxy)
	if err != nil {
		fail(err)
	}
	defer c.Close()
	fmt.Fprintf(c, "GET http://%s/lines HTTP/1.1\r\nHost: %s\r\n\r\n", origin, origin)
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		fail(err)
	}
	sc := bufio.NewScanner(resp.Body)
	var late []time.Duration
	for end := time.Now().Add(d); time.Now().Before(end) && sc.Scan(); {
		var sent int64
		if _, err := fmt.Sscanf(sc.Text(), "{\"sent\":%d}", &sent); err == nil {
			late = append(late, time.Since(time.Unix(0, sent)).Round(time.Microsecond))
		}
	}
	if len(late) == 0 {
		fail("no lines reached the normal client")
	}
	slices.Sort(late)
	return late
}

var fail = benchproc.Fail
