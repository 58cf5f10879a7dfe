package ollamapath

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/slapenir/slapenir/internal/testutil/realollama"
)

// TestOllamaPath is the benchmark (see the package doc). Its knobs, from
// the environment: ROUNDS (5), REQUESTS per path per round (10), TOKENS per
// answer (64).
func TestOllamaPath(t *testing.T) {
	if os.Getenv("SLAPENIR_BENCH_OLLAMA_PATH") != "1" {
		t.Skip("a benchmark: run bench/ollama-path.sh (SLAPENIR_BENCH_OLLAMA_PATH=1)")
	}
	rounds, requests, tokens := envInt("ROUNDS", 5), envInt("REQUESTS", 10), envInt("TOKENS", 64)

	dir := traversableTempDir(t)
	bin := filepath.Join(dir, "slapenir")
	build := exec.Command("go", "build", "-o", bin, "../../cmd/slapenir")
	build.Stderr = os.Stderr
	if err := build.Run(); err != nil {
		t.Fatalf("building slapenir: %v", err)
	}
	srv := realollama.Start(t, realollama.Options{})
	helper, proxyPID := startUp(t, bin, dir, srv.Addr)

	paths := []struct{ name, url string }{{"direct", srv.URL}, {"path", "http://" + helper}}
	clients := map[string]*http.Client{}
	for _, p := range paths {
		clients[p.name] = &http.Client{Transport: &http.Transport{Proxy: nil, DisableCompression: true}}
		stream(t, clients[p.name], p.url, tokens) // warm: model loaded, connections open
	}
	first := map[string][]time.Duration{}
	perToken := map[string][]time.Duration{}
	var proxyCPU time.Duration
	load := loadavg()
	for r := 0; r < rounds; r++ {
		order := paths
		if r%2 == 1 { // interleave: neither path always runs first
			order = []struct{ name, url string }{paths[1], paths[0]}
		}
		for _, p := range order {
			cpu := cpuTime(t, proxyPID)
			for i := 0; i < requests; i++ {
				f, per := stream(t, clients[p.name], p.url, tokens)
				first[p.name] = append(first[p.name], f)
				perToken[p.name] = append(perToken[p.name], per)
			}
			if p.name == "path" {
				proxyCPU += cpuTime(t, proxyPID) - cpu
			}
		}
	}
	fmt.Printf("# %d rounds × %d streamed /api/chat of %d tokens per path; load %s before, %s after\n",
		rounds, requests, tokens, load, loadavg())
	fmt.Printf("%-8s %20s %36s\n", "", "first token (p50)", "token's delay after Ollama made it (p50)")
	for _, p := range paths {
		fmt.Printf("%-8s %20s %36s\n", p.name, median(first[p.name]).Round(time.Microsecond), median(perToken[p.name]).Round(time.Microsecond))
	}
	fd, fp := median(first["direct"]), median(first["path"])
	td, tp := median(perToken["direct"]), median(perToken["path"])
	fmt.Printf("added by the path: first token %s (×%.2f), per token %s (×%.2f)\n",
		(fp - fd).Round(time.Microsecond), float64(fp)/float64(fd), (tp - td).Round(time.Microsecond), float64(tp)/float64(td))
	fmt.Printf("proxy CPU time per request through the path: %s (user+system, %d requests)\n",
		(proxyCPU / time.Duration(rounds*requests)).Round(10*time.Microsecond), rounds*requests)
}

// stream sends one streamed /api/chat to base and returns the delay to the
// first token line, and the median delay of a token line: from when Ollama
// made it (its created_at) to when it arrived here.
func stream(t *testing.T, c *http.Client, base string, tokens int) (first, perToken time.Duration) {
	t.Helper()
	body := fmt.Sprintf(`{"model":%q,"options":{"num_predict":%d},"messages":[{"role":"user","content":"say hello"}]}`, realollama.Model, tokens)
	start := time.Now()
	resp, err := c.Post(base+"/api/chat", "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatalf("%s: %v", base, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("%s: %d %s", base, resp.StatusCode, b)
	}
	sc := bufio.NewScanner(resp.Body)
	var firstAt time.Time
	var delays []time.Duration
	for sc.Scan() {
		at := time.Now()
		var line struct {
			CreatedAt time.Time `json:"created_at"`
			Done      bool      `json:"done"`
		}
		if err := json.Unmarshal(sc.Bytes(), &line); err != nil {
			t.Fatalf("%s: line %q: %v", base, sc.Text(), err)
		}
		if line.Done {
			break
		}
		if firstAt.IsZero() {
			firstAt = at
		}
		// created_at is when Ollama wrote the token, on this machine's
		// clock: what came after it is the way to the client.
		delays = append(delays, at.Sub(line.CreatedAt))
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	if len(delays) < 2 {
		t.Fatalf("%s: %d token lines, want a stream", base, len(delays))
	}
	return firstAt.Sub(start), median(delays)
}

// startUp runs `slapenir up --unconfined` with OLLAMA_HOST at the real
// server, and returns the helper's address and the proxy's pid once up is
// ready. Unconfined, the path is the same processes without the network
// namespace's veth hop.
func startUp(t *testing.T, bin, dir, ollama string) (helper string, proxyPID int) {
	t.Helper()
	state := filepath.Join(dir, "state")
	cmd := exec.Command(bin, "up", "--unconfined", "--no-fake-ollama", "--state-dir", state)
	var env []string
	for _, kv := range os.Environ() {
		if k, _, _ := strings.Cut(kv, "="); !strings.HasPrefix(k, "OLLAMA_") && !strings.EqualFold(k, "http_proxy") && !strings.EqualFold(k, "https_proxy") && k != "HOME" {
			env = append(env, kv)
		}
	}
	cmd.Env = append(env, "HOME="+state, "OLLAMA_HOST="+ollama, "OLLAMA_MODEL="+realollama.Model)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = cmd.Stdout
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var log strings.Builder
	ready := make(chan struct{})
	proxyRx := regexp.MustCompile(`^\[up\]   proxy:   \S+ \(mTLS\) on \S+, pid (\d+),`)
	helperRx := regexp.MustCompile(`^\[up\]   relay:   HTTP_PROXY=\S+, Ollama helper http://(\S+)$`)
	go func() {
		sc := bufio.NewScanner(out)
		once := sync.Once{}
		isUp := false
		for sc.Scan() {
			line := sc.Text()
			mu.Lock()
			log.WriteString(line + "\n")
			if m := proxyRx.FindStringSubmatch(line); m != nil {
				proxyPID, _ = strconv.Atoi(m[1])
			}
			if m := helperRx.FindStringSubmatch(line); m != nil {
				helper = m[1]
			}
			isUp = isUp || strings.HasPrefix(line, "[up] SLAPENIR is up")
			// up prints where everything is after it says it is up.
			if isUp && helper != "" && proxyPID != 0 {
				once.Do(func() { close(ready) })
			}
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGINT)
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		}
	})
	select {
	case <-ready:
	case <-time.After(2 * time.Minute):
		mu.Lock()
		defer mu.Unlock()
		t.Fatalf("slapenir up was not ready within 2 minutes:\n%s", log.String())
	}
	mu.Lock()
	defer mu.Unlock()
	if helper == "" || proxyPID == 0 {
		t.Fatalf("up printed no helper address or proxy pid:\n%s", log.String())
	}
	return helper, proxyPID
}

// cpuTime is the user and system CPU time pid has used, from /proc.
func cpuTime(t *testing.T, pid int) time.Duration {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		t.Fatalf("the proxy (pid %d): %v", pid, err)
	}
	s := string(b)
	fields := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
	// utime and stime are fields 14 and 15 of stat, in clock ticks (100 a
	// second on Linux).
	u, _ := strconv.ParseInt(fields[11], 10, 64)
	st, _ := strconv.ParseInt(fields[12], 10, 64)
	return time.Duration(u+st) * 10 * time.Millisecond
}

func median(ds []time.Duration) time.Duration {
	s := append([]time.Duration(nil), ds...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return s[len(s)/2]
}

func loadavg() string {
	b, _ := os.ReadFile("/proc/loadavg")
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}

func envInt(name string, def int) int {
	if n, err := strconv.Atoi(os.Getenv(name)); err == nil && n > 0 {
		return n
	}
	return def
}

// traversableTempDir is t.TempDir that the agent's services (uid 1000
// when this runs as root) can pass through.
func traversableTempDir(t *testing.T) string {
	dir := t.TempDir()
	if os.Geteuid() == 0 {
		for d := dir; d != "/" && d != os.TempDir(); d = filepath.Dir(d) {
			if err := os.Chmod(d, 0o711); err != nil {
				t.Fatal(err)
			}
		}
		if err := os.Chmod(dir, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}
