// Command memory measures what the proxy holds (issue 13, aim 4), on the
// real slapenir binary with a credential configured for the origin so every
// response byte is scanned:
//
//   - peak RSS of one 4 GiB stream through the redactor;
//   - bytes per idle keep-alive client connection (heap and stacks in use,
//     from the proxy's own runtime statistics, and RSS);
//   - RSS while 50 busy clients run beside those idle ones, sampled;
//   - with 100 clients reading a fast stream at 1 byte a second, what the
//     proxy holds and how late a normal client's lines arrive.
//
// Usage: go run ./bench/memory -bin ./slapenir   (bench/memory.sh builds it)
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
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

func main() {
	bin := flag.String("bin", "./slapenir", "slapenir binary to measure")
	idle := flag.Int("idle", 1000, "idle keep-alive client connections")
	busy := flag.Int("busy", 50, "busy clients beside the idle ones")
	streamGiB := flag.Int("stream-gib", 4, "GiB in the scanned stream")
	slow := flag.Int("slow", 100, "clients reading 1 byte a second")
	flag.Parse()

	origin := httptest.NewServer(http.HandlerFunc(serveOrigin))
	defer origin.Close()
	p := start(*bin, origin.Listener.Addr().String())
	running = p
	defer p.stop()

	fmt.Printf("# memory: real binary, one credential for the origin (every response scanned)\n\n")
	base := p.stats()
	fmt.Printf("| measure | value |\n|---|---:|\n")
	fmt.Printf("| at rest: RSS | %s |\n", mib(base.rss))

	// One long stream, every byte scanned: peak RSS.
	p.resetPeak()
	c, err := net.Dial("tcp", p.addr)
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
	fmt.Printf("| one %d GiB stream scanned (%.0f MB/s): peak RSS | %s |\n", *streamGiB, float64(size)/1e6/time.Since(t0).Seconds(), mib(p.stats().peak))

	// Idle keep-alive connections, each after one request.
	conns := make([]net.Conn, 0, *idle)
	for range *idle {
		c, err := net.Dial("tcp", p.addr)
		if err != nil {
			fail("dial:", err)
		}
		roundTrip(c, "http://"+origin.Listener.Addr().String()+"/1k")
		conns = append(conns, c)
	}
	time.Sleep(500 * time.Millisecond)
	held := p.stats()
	n := int64(*idle)
	fmt.Printf("| %d idle keep-alive connections: heap+stacks per connection | %d B |\n", *idle, (held.heap+held.stack-base.heap-base.stack)/n)
	fmt.Printf("| … RSS per connection | %d B |\n", (held.rss-base.rss)/n)
	fmt.Printf("| … proxy goroutines | %d |\n", held.goroutines)

	// Busy clients beside the idle ones: RSS sampled.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	var wg sync.WaitGroup
	var done atomic.Int64
	for range *busy {
		wg.Go(func() {
			c, err := net.Dial("tcp", p.addr)
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
		rss = append(rss, p.stats().rss)
	}
	wg.Wait()
	cancel()
	fmt.Printf("| %d busy + %d idle for 10 s (%d requests): RSS min–max | %s–%s |\n", *busy, *idle, done.Load(), mib(slices.Min(rss)), mib(slices.Max(rss)))
	for _, c := range conns {
		c.Close()
	}

	// Slow readers beside a normal one.
	before := p.stats()
	var slowConns []net.Conn
	for range *slow {
		c, err := net.Dial("tcp", p.addr)
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
	late := normalReader(p.addr, origin.Listener.Addr().String(), 5*time.Second)
	during := p.stats()
	for _, c := range slowConns {
		c.Close()
	}
	fmt.Printf("| %d clients reading 1 B/s of a fast stream: heap+stacks held | %s |\n", *slow, mib(during.heap+during.stack-before.heap-before.stack))
	fmt.Printf("| … a normal client's lines meanwhile: delay p50 / p99 / max | %s / %s / %s |\n", late[len(late)/2], late[len(late)*99/100], late[len(late)-1])
}

// serveOrigin: /1k, /stream?bytes=N (chunked, unknown length), /lines
// (NDJSON lines with their send time, as fast as the client takes them,
// for 30 s).
func serveOrigin(w http.ResponseWriter, r *http.Request) {
	switch r.URL.Path {
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

type proxy struct {
	cmd        *exec.Cmd
	addr, prof string
	dir        string
}

type stats struct{ rss, peak, heap, stack, goroutines int64 }

func start(bin, origin string) *proxy {
	dir, err := os.MkdirTemp("", "slapenir-memory")
	if err != nil {
		fail(err)
	}
	p := &proxy{dir: dir, addr: freeAddr(), prof: freeAddr()}
	cfg := fmt.Sprintf(`listen: %q
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
      hosts: [%q]
`, p.addr, filepath.Join(dir, "audit.jsonl"), origin)
	if err := os.WriteFile(filepath.Join(dir, "proxy.yaml"), []byte(cfg), 0o600); err != nil {
		fail(err)
	}
	p.cmd = exec.Command(bin, "proxy", "--config", filepath.Join(dir, "proxy.yaml"), "--state-dir", filepath.Join(dir, "state"),
		"--insecure-plaintext", "--pprof", p.prof)
	p.cmd.Env = append(os.Environ(), "BENCH_TOKEN=bench-real-token-0123456789abcdef")
	p.cmd.Stderr = io.Discard
	if err := p.cmd.Start(); err != nil {
		fail("cannot start the proxy:", err)
	}
	for i := 0; ; i++ {
		if resp, err := http.Get("http://" + p.addr + "/health"); err == nil {
			resp.Body.Close()
			return p
		}
		if i == 200 {
			fail("the proxy did not answer /health")
		}
		time.Sleep(25 * time.Millisecond)
	}
}

func (p *proxy) stop() {
	_ = p.cmd.Process.Kill()
	_ = p.cmd.Wait()
	os.RemoveAll(p.dir)
}

var memLine = regexp.MustCompile(`(?m)^# (HeapInuse|StackInuse) = (\d+)`)

// stats reads RSS and peak RSS from /proc and the heap and stacks in use
// from the proxy's profiler (after a GC, so garbage does not count).
func (p *proxy) stats() stats {
	var s stats
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", p.cmd.Process.Pid))
	if err != nil {
		fail(err)
	}
	for _, line := range strings.Split(string(status), "\n") {
		f := strings.Fields(line)
		if len(f) >= 2 && (f[0] == "VmRSS:" || f[0] == "VmHWM:") {
			kb, _ := strconv.ParseInt(f[1], 10, 64)
			if f[0] == "VmRSS:" {
				s.rss = kb << 10
			} else {
				s.peak = kb << 10
			}
		}
	}
	body := get("http://" + p.prof + "/debug/pprof/heap?debug=1&gc=1")
	for _, m := range memLine.FindAllStringSubmatch(body, -1) {
		v, _ := strconv.ParseInt(m[2], 10, 64)
		if m[1] == "HeapInuse" {
			s.heap = v
		} else {
			s.stack = v
		}
	}
	g := get("http://" + p.prof + "/debug/pprof/goroutine?debug=1")
	fmt.Sscanf(g, "goroutine profile: total %d", &s.goroutines)
	return s
}

// resetPeak starts VmHWM over from the current RSS.
func (p *proxy) resetPeak() {
	_ = os.WriteFile(fmt.Sprintf("/proc/%d/clear_refs", p.cmd.Process.Pid), []byte("5"), 0)
}

func get(u string) string {
	resp, err := http.Get(u)
	if err != nil {
		fail(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

func freeAddr() string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fail(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

func mib(b int64) string { return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20)) }

// running is stopped however the run ends: os.Exit skips defers.
var running *proxy

func fail(args ...any) {
	fmt.Fprintln(os.Stderr, append([]any{"memory:"}, args...)...)
	if running != nil {
		running.stop()
	}
	os.Exit(1)
}
