// Package benchproc runs the real slapenir proxy as a process for the
// benchmark programs under bench/ and reads what it holds: RSS and peak RSS
// from /proc, heap and stacks in use and goroutines from its profiler.
//
// It is for benchmarks only: it exits the program on any failure (after
// stopping the proxy it started), since a half-measured run is worthless.
package benchproc

import (
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Proxy is a running slapenir proxy.
type Proxy struct {
	Dir   string // its temporary directory: config, state, audit log
	State string // its --state-dir
	Addr  string // where it listens
	prof  string // its profiler
	cmd   *exec.Cmd
}

// Stats are what the proxy holds at one moment.
type Stats struct {
	RSS, Peak, Heap, Stack int64
	Goroutines             int
}

// running is stopped however the run ends: os.Exit skips defers.
var running *Proxy

// Start runs bin as `slapenir proxy` with the configuration config, in
// which %[1]s is the listen address and %[2]s the audit file; args are
// added to the command line and env to its environment. With tls the proxy
// is asked for /health over TLS (its mTLS default), else over plain HTTP.
func Start(bin, config string, tls bool, env []string, args ...string) *Proxy {
	dir, err := os.MkdirTemp("", "slapenir-bench")
	if err != nil {
		Fail(err)
	}
	p := &Proxy{Dir: dir, State: filepath.Join(dir, "state"), Addr: FreeAddr(), prof: FreeAddr()}
	cfg := fmt.Sprintf(config, p.Addr, filepath.Join(dir, "audit.jsonl"))
	if err := os.WriteFile(filepath.Join(dir, "proxy.yaml"), []byte(cfg), 0o600); err != nil {
		Fail(err)
	}
	p.cmd = exec.Command(bin, append([]string{"proxy", "--config", filepath.Join(dir, "proxy.yaml"), "--state-dir", p.State, "--pprof", p.prof}, args...)...)
	p.cmd.Env = append(os.Environ(), env...)
	p.cmd.Stderr = io.Discard
	if err := p.cmd.Start(); err != nil {
		Fail("cannot start the proxy:", err)
	}
	running = p
	health := "http://" + p.Addr + "/health"
	c := http.DefaultClient
	if tls {
		health = "https://" + p.Addr + "/health"
		c = insecureClient
	}
	for i := 0; ; i++ {
		if resp, err := c.Get(health); err == nil {
			resp.Body.Close()
			return p
		}
		if i == 400 {
			Fail("the proxy did not answer /health")
		}
		time.Sleep(25 * time.Millisecond)
	}
}

var insecureClient = &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}

// AuditFile is the proxy's audit log.
func (p *Proxy) AuditFile() string { return filepath.Join(p.Dir, "audit.jsonl") }

// Stop ends the proxy with SIGTERM, so its audit log is flushed; its
// directory stays until Remove.
func (p *Proxy) Stop() {
	if p.cmd.ProcessState != nil {
		return
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	_ = p.cmd.Wait()
	if running == p {
		running = nil
	}
}

// Remove stops the proxy and deletes its directory.
func (p *Proxy) Remove() {
	p.Stop()
	os.RemoveAll(p.Dir)
}

var memLine = regexp.MustCompile(`(?m)^# (HeapInuse|StackInuse) = (\d+)`)

// Stats reads RSS and peak RSS from /proc and the heap and stacks in use
// from the proxy's profiler (after a GC, so garbage does not count).
func (p *Proxy) Stats() Stats {
	var s Stats
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", p.cmd.Process.Pid))
	if err != nil {
		Fail(err)
	}
	for _, line := range strings.Split(string(status), "\n") {
		f := strings.Fields(line)
		if len(f) >= 2 && (f[0] == "VmRSS:" || f[0] == "VmHWM:") {
			kb, _ := strconv.ParseInt(f[1], 10, 64)
			if f[0] == "VmRSS:" {
				s.RSS = kb << 10
			} else {
				s.Peak = kb << 10
			}
		}
	}
	for _, m := range memLine.FindAllStringSubmatch(Get("http://"+p.prof+"/debug/pprof/heap?debug=1&gc=1"), -1) {
		v, _ := strconv.ParseInt(m[2], 10, 64)
		if m[1] == "HeapInuse" {
			s.Heap = v
		} else {
			s.Stack = v
		}
	}
	fmt.Sscanf(Get("http://"+p.prof+"/debug/pprof/goroutine?debug=1"), "goroutine profile: total %d", &s.Goroutines)
	return s
}

// ResetPeak starts peak RSS (VmHWM) over from the current RSS.
func (p *Proxy) ResetPeak() {
	_ = os.WriteFile(fmt.Sprintf("/proc/%d/clear_refs", p.cmd.Process.Pid), []byte("5"), 0)
}

// Get returns the body at u.
func Get(u string) string {
	resp, err := http.Get(u)
	if err != nil {
		Fail(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

// FreeAddr is a free loopback address.
func FreeAddr() string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		Fail(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// MiB formats bytes.
func MiB(b int64) string { return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20)) }

// Fail reports args, stops the proxy and exits.
func Fail(args ...any) {
	fmt.Fprintln(os.Stderr, append([]any{filepath.Base(os.Args[0]) + ":"}, args...)...)
	if running != nil {
		running.Remove()
	}
	os.Exit(1)
}
