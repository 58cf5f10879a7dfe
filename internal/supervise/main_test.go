package supervise_test

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// slapenir is the real binary under test, built once for the package.
var slapenir string

func TestMain(m *testing.M) {
	os.Exit(runTests(m))
}

func runTests(m *testing.M) int {
	if bin := os.Getenv("SLAPENIR_BIN"); bin != "" {
		slapenir = bin
		return m.Run()
	}
	dir, err := os.MkdirTemp("", "supervise-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	// Readable by the unprivileged users the tests run services as.
	_ = os.Chmod(dir, 0o755)
	slapenir = filepath.Join(dir, "slapenir")
	build := exec.Command("go", "build", "-o", slapenir, "github.com/slapenir/slapenir/cmd/slapenir")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintf(os.Stderr, "cannot build the slapenir binary for the tests: %v (set SLAPENIR_BIN to a built one)\n", err)
		return 1
	}
	return m.Run()
}

// outputFile is the file init's stdout and stderr go to.
type outputFile string

// String returns everything init has written so far.
func (f outputFile) String() string {
	b, _ := os.ReadFile(string(f))
	return string(b)
}

// initRun is one `slapenir init` running as PID 1 of a new PID namespace.
type initRun struct {
	t      *testing.T
	cmd    *exec.Cmd
	out    outputFile
	socket string
	pid1   bool
	done   chan struct{}
	code   int
}

const waitLimit = 15 * time.Second

func needRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: runs init as PID 1 in a new PID namespace (unshare) and switches users")
	}
}

// startInit writes config to a service file and starts init on it as PID 1.
func startInit(t *testing.T, config string, env ...string) *initRun {
	t.Helper()
	return startInitAs(t, true, config, env...)
}

// startInitAs starts init as PID 1 of a new PID namespace (pid1) or as an
// ordinary process, as on a workstation.
func startInitAs(t *testing.T, pid1 bool, config string, env ...string) *initRun {
	t.Helper()
	needRoot(t)
	dir := t.TempDir()
	// Reachable by the unprivileged users of the ctl test.
	_ = os.Chmod(filepath.Dir(dir), 0o755)
	_ = os.Chmod(dir, 0o755)
	file := filepath.Join(dir, "services.yaml")
	if err := os.WriteFile(file, []byte(config), 0o644); err != nil {
		t.Fatal(err)
	}
	// init's stdout is a file, not a pipe with a copier goroutine: a line
	// init wrote before it answered a ctl request is readable when the
	// answer arrives, so tests can check the order of the two.
	outPath := filepath.Join(dir, "init.out")
	outFile, err := os.OpenFile(outPath, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer outFile.Close()
	r := &initRun{t: t, out: outputFile(outPath), socket: filepath.Join(dir, "init.sock"), done: make(chan struct{})}
	args := []string{slapenir, "init", "--config", file, "--socket", r.socket, "--socket-group", "65534", "--shutdown-timeout", "8s"}
	if pid1 {
		// --kill-child: if the test kills unshare, init (and so its namespace) dies too.
		args = append([]string{"unshare", "--pid", "--fork", "--mount-proc", "--kill-child"}, args...)
	}
	r.pid1 = pid1
	r.cmd = exec.Command(args[0], args[1:]...)
	r.cmd.Env = append(os.Environ(), env...)
	r.cmd.Stdout, r.cmd.Stderr = outFile, outFile
	r.cmd.WaitDelay = 5 * time.Second
	if err := r.cmd.Start(); err != nil {
		t.Fatalf("start unshare: %v", err)
	}
	go func() {
		_ = r.cmd.Wait()
		r.code = r.cmd.ProcessState.ExitCode()
		close(r.done)
	}()
	t.Cleanup(func() {
		select {
		case <-r.done:
		default:
			_ = r.cmd.Process.Kill()
			<-r.done
		}
		if t.Failed() {
			t.Logf("init output:\n%s", r.out)
		}
	})
	return r
}

// waitFor waits until init's output contains s, and returns the output.
func (r *initRun) waitFor(s string) string {
	r.t.Helper()
	deadline := time.Now().Add(waitLimit)
	for {
		out := r.out.String()
		if strings.Contains(out, s) {
			return out
		}
		if time.Now().After(deadline) {
			r.t.Fatalf("no %q in init's output within %s", s, waitLimit)
		}
		select {
		case <-r.done:
			if out := r.out.String(); !strings.Contains(out, s) {
				r.t.Fatalf("init exited (code %d) without printing %q", r.code, s)
			}
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// wait waits for init to exit and returns its exit code.
func (r *initRun) wait() int {
	r.t.Helper()
	select {
	case <-r.done:
		return r.code
	case <-time.After(waitLimit):
		r.t.Fatalf("init did not exit within %s", waitLimit)
		return -1
	}
}

// initPID is init's pid as seen from the test (outside its namespace).
func (r *initRun) initPID() int {
	r.t.Helper()
	if !r.pid1 {
		return r.cmd.Process.Pid
	}
	children := childrenOf(r.cmd.Process.Pid)
	if len(children) != 1 {
		r.t.Fatalf("unshare has children %v, want exactly init", children)
	}
	return children[0]
}

func (r *initRun) signal(sig syscall.Signal) {
	r.t.Helper()
	if err := syscall.Kill(r.initPID(), sig); err != nil {
		r.t.Fatalf("signal init: %v", err)
	}
}

// servicePID translates a pid inside init's namespace to the host's.
func (r *initRun) servicePID(nsPID int) int {
	r.t.Helper()
	for _, pid := range childrenOf(r.initPID()) {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
		if err != nil {
			continue
		}
		if statusField(string(b), "NSpid:") == strconv.Itoa(nsPID) {
			return pid
		}
	}
	r.t.Fatalf("no child of init has pid %d in its namespace", nsPID)
	return 0
}

// childrenOf scans /proc, since /proc/PID/task/TID/children is not
// available on every kernel.
func childrenOf(pid int) []int {
	entries, _ := os.ReadDir("/proc")
	var out []int
	for _, e := range entries {
		child, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", child))
		if err != nil {
			continue
		}
		if field := statusField(string(b), "PPid:"); field == strconv.Itoa(pid) {
			out = append(out, child)
		}
	}
	return out
}

// statusField returns the last value of a /proc/PID/status line.
func statusField(status, key string) string {
	for _, line := range strings.Split(status, "\n") {
		if f := strings.Fields(line); len(f) > 1 && f[0] == key {
			return f[len(f)-1]
		}
	}
	return ""
}

// ctl runs the real `slapenir ctl` against this init.
func (r *initRun) ctl(args ...string) (string, int) {
	r.t.Helper()
	cmd := exec.Command(slapenir, append([]string{"ctl", "--socket", r.socket}, args...)...)
	out, _ := cmd.CombinedOutput()
	return string(out), cmd.ProcessState.ExitCode()
}

// before fails the test unless a occurs in out, and before b.
func before(t *testing.T, out, a, b string) {
	t.Helper()
	i, j := strings.Index(out, a), strings.Index(out, b)
	if i < 0 || j < 0 || i > j {
		t.Errorf("want %q before %q (at %d and %d)", a, b, i, j)
	}
}

// field returns the value after "key" up to the end of the line.
func field(t *testing.T, out, key string) string {
	t.Helper()
	i := strings.Index(out, key)
	if i < 0 {
		t.Fatalf("no %q in output", key)
	}
	rest := out[i+len(key):]
	if nl := strings.IndexByte(rest, '\n'); nl >= 0 {
		rest = rest[:nl]
	}
	return strings.TrimSpace(rest)
}

// waitCount waits until s occurs n times in init's output, and returns it.
func (r *initRun) waitCount(s string, n int) string {
	r.t.Helper()
	deadline := time.Now().Add(waitLimit)
	for {
		out := r.out.String()
		if strings.Count(out, s) >= n {
			return out
		}
		if time.Now().After(deadline) {
			r.t.Fatalf("%q appeared %d times within %s, want %d", s, strings.Count(out, s), waitLimit, n)
		}
		select {
		case <-r.done:
			r.t.Fatalf("init exited (code %d) with %q only %d times, want %d", r.code, s, strings.Count(r.out.String(), s), n)
		case <-time.After(10 * time.Millisecond):
		}
	}
}
