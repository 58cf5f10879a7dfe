package e2e

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// upProcess is a running `slapenir up` and every line it printed.
type upProcess struct {
	t     *testing.T
	cmd   *exec.Cmd
	state string

	mu      sync.Mutex
	lines   []string
	changed chan struct{} // closed and replaced on each new line
	done    chan struct{}
	err     error
}

// startUp runs slapenir up with args and env; it is killed if the test ends
// first, and its output is logged when the test fails.
func startUp(t *testing.T, state string, env []string, args ...string) *upProcess {
	return startUpAs(t, nil, state, env, args...)
}

// startUpAs is startUp as another user (nil: the test's own).
func startUpAs(t *testing.T, cred *syscall.Credential, state string, env []string, args ...string) *upProcess {
	t.Helper()
	return launchUp(t, cred, nil, state, env, args...)
}

// launchUp runs slapenir up as cred (nil: the test's own user) with stdin
// (nil: none) and, unless state is "", --state-dir state.
func launchUp(t *testing.T, cred *syscall.Credential, stdin io.Reader, state string, env []string, args ...string) *upProcess {
	t.Helper()
	if state != "" {
		args = append([]string{"--state-dir", state}, args...)
	}
	cmd := exec.Command(slapenir, append([]string{"up"}, args...)...)
	cmd.Env = env
	cmd.Stdin = stdin
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Credential: cred}
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = w, w
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	w.Close()
	u := &upProcess{t: t, cmd: cmd, state: state, changed: make(chan struct{}), done: make(chan struct{})}
	read := make(chan struct{})
	go func() {
		defer close(read)
		sc := bufio.NewScanner(r)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			u.mu.Lock()
			u.lines = append(u.lines, sc.Text())
			close(u.changed)
			u.changed = make(chan struct{})
			u.mu.Unlock()
		}
	}()
	go func() {
		<-read
		u.err = cmd.Wait()
		close(u.done)
	}()
	t.Cleanup(func() {
		select {
		case <-u.done:
		default:
			_ = syscall.Kill(cmd.Process.Pid, syscall.SIGINT)
			select {
			case <-u.done:
			case <-time.After(30 * time.Second):
				_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
				<-u.done
			}
		}
		if t.Failed() {
			t.Logf("--- slapenir up output ---\n%s", u.output())
		}
	})
	return u
}

func (u *upProcess) output() string {
	u.mu.Lock()
	defer u.mu.Unlock()
	return strings.Join(u.lines, "\n")
}

// waitFor returns the submatches of the first line matching re, waiting up
// to limit for it; it fails the test if up exits or time runs out first.
func (u *upProcess) waitFor(t *testing.T, re string, limit time.Duration) []string {
	t.Helper()
	rx := regexp.MustCompile(re)
	deadline := time.After(limit)
	for {
		u.mu.Lock()
		for _, l := range u.lines {
			if m := rx.FindStringSubmatch(l); m != nil {
				u.mu.Unlock()
				return m
			}
		}
		changed := u.changed
		u.mu.Unlock()
		select {
		case <-changed:
		case <-u.done:
			// One last look: the line may have come with the exit.
			u.mu.Lock()
			for _, l := range u.lines {
				if m := rx.FindStringSubmatch(l); m != nil {
					u.mu.Unlock()
					return m
				}
			}
			u.mu.Unlock()
			t.Fatalf("slapenir up exited (%v) before printing a line matching %q", u.err, re)
		case <-deadline:
			t.Fatalf("no line matching %q within %s", re, limit)
		}
	}
}

// interrupt is Ctrl-C: SIGINT, then up's exit code (it must exit within
// limit). A test that already sent SIGINT may find up gone by now, which is
// what it asked for.
func (u *upProcess) interrupt(limit time.Duration) int {
	u.t.Helper()
	if err := u.cmd.Process.Signal(syscall.SIGINT); err != nil && !errors.Is(err, os.ErrProcessDone) {
		u.t.Fatal(err)
	}
	select {
	case <-u.done:
	case <-time.After(limit):
		u.t.Fatalf("slapenir up did not exit within %s of SIGINT", limit)
	}
	var ee *exec.ExitError
	if errors.As(u.err, &ee) {
		return ee.ExitCode()
	}
	if u.err != nil {
		u.t.Fatal(u.err)
	}
	return 0
}

// upEndpoints are what up printed about where things run.
type upEndpoints struct {
	ProxyURL, ProxyAddr, AuditFile string
	ProxyPID, InitPID              int
	Relay, Helper, Ollama          string
	Certs, Socket                  string
	Netns, HostIf, HostIP          string
}

func (u *upProcess) endpoints(confined bool) upEndpoints {
	u.t.Helper()
	var e upEndpoints
	m := u.waitFor(u.t, `^\[up\]   proxy:   (\S+) \(mTLS\) on (\S+), pid (\d+), audit log (\S+)$`, time.Minute)
	e.ProxyURL, e.ProxyAddr, e.AuditFile = m[1], m[2], m[4]
	e.ProxyPID, _ = strconv.Atoi(m[3])
	e.Ollama = u.waitFor(u.t, `^\[up\]   Ollama:  http://(\S+) `, time.Second)[1]
	e.InitPID, _ = strconv.Atoi(u.waitFor(u.t, `^\[up\]   agent:   slapenir init pid (\d+)`, time.Second)[1])
	m = u.waitFor(u.t, `^\[up\]   relay:   HTTP_PROXY=http://(\S+), Ollama helper http://(\S+)$`, time.Second)
	e.Relay, e.Helper = m[1], m[2]
	m = u.waitFor(u.t, `^\[up\]   files:   services \S+, certificates (\S+), control socket (\S+)$`, time.Second)
	e.Certs, e.Socket = m[1], m[2]
	if confined {
		m = u.waitFor(u.t, `network namespace (\S+) \(veth (\S+) (\S+) <-> `, time.Second)
		e.Netns, e.HostIf, e.HostIP = m[1], m[2], m[3]
	}
	return e
}

// processesOf lists the processes that belong to this run of up: those
// whose command line or environment names its state directory (every
// service gets HOME below it), plus init and the proxy.
func processesOf(state string, pids ...int) map[int]string {
	found := map[int]string{}
	for _, p := range pids {
		if b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(p), "cmdline")); err == nil && len(b) > 0 {
			found[p] = strings.ReplaceAll(string(b), "\x00", " ")
		}
	}
	ents, _ := os.ReadDir("/proc")
	for _, ent := range ents {
		pid, err := strconv.Atoi(ent.Name())
		if err != nil || pid == os.Getpid() {
			continue
		}
		cmdline, _ := os.ReadFile(filepath.Join("/proc", ent.Name(), "cmdline"))
		environ, _ := os.ReadFile(filepath.Join("/proc", ent.Name(), "environ"))
		if strings.Contains(string(cmdline), state) || strings.Contains(string(environ), state) {
			found[pid] = strings.ReplaceAll(string(cmdline), "\x00", " ")
		}
	}
	return found
}

// waitGone waits until none of pids exists; it returns those still there.
func waitGone(pids map[int]string, limit time.Duration) map[int]string {
	left := map[int]string{}
	for deadline := time.Now().Add(limit); ; {
		clear(left)
		for p, cmd := range pids {
			if alive(p) {
				left[p] = cmd
			}
		}
		if len(left) == 0 || time.Now().After(deadline) {
			return left
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// alive reports whether pid exists and is not a zombie.
func alive(pid int) bool {
	b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "stat"))
	if err != nil {
		return false
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	return i < 0 || i+2 >= len(s) || s[i+2] != 'Z'
}

// agentTempDir is t.TempDir made reachable for the agent's uid 1000 when
// the test runs as root (services drop to that user).
func agentTempDir(t *testing.T) string {
	dir := t.TempDir()
	if os.Geteuid() == 0 {
		for d := dir; d != "/" && d != os.TempDir(); d = filepath.Dir(d) {
			if err := os.Chmod(d, 0o711); err != nil {
				t.Fatal(err)
			}
		}
	}
	return dir
}

// envWithout is the test's environment without the named variables (a
// developer's OLLAMA_HOST or STEP_CA_URL must not leak into a test).
func envWithout(keys ...string) []string {
	var env []string
next:
	for _, kv := range os.Environ() {
		for _, k := range keys {
			if strings.HasPrefix(kv, k+"=") {
				continue next
			}
		}
		env = append(env, kv)
	}
	return env
}

func mustURL(t *testing.T, raw string) *url.URL {
	t.Helper()
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

func hostOnly(hostport string) string {
	h, _, _ := net.SplitHostPort(hostport)
	return h
}

// eachConfinement runs body against a fresh up with the fake Ollama, once
// in a network namespace and once --unconfined, each in its own subtest
// (dir is the test's directory, state up's state directory in it).
func eachConfinement(t *testing.T, body func(t *testing.T, u *upProcess, dir, state string, confined bool)) {
	needRootUp(t)
	for _, confined := range []bool{true, false} {
		t.Run(fmt.Sprintf("confined=%v", confined), func(t *testing.T) {
			dir := agentTempDir(t)
			state := filepath.Join(dir, "state")
			args := []string{"--fake-ollama", "--heartbeat", "1s"}
			if !confined {
				args = append(args, "--unconfined")
			}
			body(t, startUp(t, state, upEnv(t, dir), args...), dir, state, confined)
		})
	}
}
