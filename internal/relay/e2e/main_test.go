package e2e

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/slapenir/slapenir/internal/ollama/fake"
	"github.com/slapenir/slapenir/internal/proxy"
	"github.com/slapenir/slapenir/internal/testutil/proxytest"
)

// binDir holds the slapenir binary and its seed-name symlinks.
var binDir string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "slapenir-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binDir = dir
	code := func() int {
		defer os.RemoveAll(dir)
		build := exec.Command("go", "build", "-o", filepath.Join(dir, "slapenir"), "github.com/slapenir/slapenir/cmd/slapenir")
		build.Stdout, build.Stderr = os.Stderr, os.Stderr
		if err := build.Run(); err != nil {
			fmt.Fprintln(os.Stderr, "building slapenir for the e2e tests:", err)
			return 1
		}
		for _, alias := range []string{"ollama-proxy-helper", "ollama-verify", "aider-ollama"} {
			if err := os.Symlink("slapenir", filepath.Join(dir, alias)); err != nil {
				fmt.Fprintln(os.Stderr, err)
				return 1
			}
		}
		return m.Run()
	}()
	os.Exit(code)
}

const testTimeout = 60 * time.Second

func testContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	t.Cleanup(cancel)
	return ctx
}

// startProxy runs the real proxy with loopback upstreams allowed; tlsOpts
// nil serves plain HTTP. It returns the proxy's URL.
func startProxy(t *testing.T, tlsOpts *proxy.TLSOptions) string {
	t.Helper()
	return proxytest.Start(t, proxy.Options{TLS: tlsOpts}, nil).URL
}

func startFake(t *testing.T, opts fake.Options) *fake.Server {
	t.Helper()
	f, err := fake.Listen("127.0.0.1:0", opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = f.Close() })
	return f
}

func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// env is a clean environment for the binary: no proxy variables leaking in
// from the test runner, plus kv.
func env(kv ...string) []string {
	var out []string
	for _, e := range os.Environ() {
		k, _, _ := strings.Cut(e, "=")
		switch strings.ToUpper(k) {
		case "HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "ALL_PROXY", "SLAPENIR_PROXY_URL", "OLLAMA_HOST", "OLLAMA_MODEL", "OLLAMA_PROXY_PORT", "HOME", "PATH":
			continue
		}
		out = append(out, e)
	}
	return append(append(out, "PATH="+binDir+":/usr/bin:/bin"), kv...)
}

// daemon is a long-running command whose stderr is scanned for lines.
type daemon struct {
	cmd   *exec.Cmd
	lines chan string
	done  chan error
}

func startDaemon(t *testing.T, environ []string, name string, args ...string) *daemon {
	t.Helper()
	cmd := exec.Command(filepath.Join(binDir, name), args...)
	cmd.Env = environ
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	d := &daemon{cmd: cmd, lines: make(chan string, 100), done: make(chan error, 1)}
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			t.Logf("%s: %s", name, sc.Text())
			select {
			case d.lines <- sc.Text():
			default:
			}
		}
		_, _ = io.Copy(io.Discard, stderr)
		d.done <- cmd.Wait()
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-d.done
	})
	return d
}

// waitLine waits for a stderr line matching re and returns its submatches.
func (d *daemon) waitLine(t *testing.T, re *regexp.Regexp) []string {
	t.Helper()
	timeout := time.After(testTimeout)
	for {
		select {
		case l := <-d.lines:
			if m := re.FindStringSubmatch(l); m != nil {
				return m
			}
		case err := <-d.done:
			d.done <- err
			t.Fatalf("%s exited (%v) before logging %s", d.cmd.Path, err, re)
		case <-timeout:
			t.Fatalf("%s did not log %s in time", d.cmd.Path, re)
		}
	}
}

// stop sends SIGTERM and returns the exit code.
func (d *daemon) stop(t *testing.T) int {
	t.Helper()
	_ = d.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-d.done:
		d.done <- err
		if err == nil {
			return 0
		}
		if ee, ok := err.(*exec.ExitError); ok {
			return ee.ExitCode()
		}
		t.Fatal(err)
	case <-time.After(testTimeout):
		t.Fatal("no exit after SIGTERM")
	}
	return -1
}

func run(t *testing.T, ctx context.Context, environ []string, name string, args ...string) (string, int) {
	t.Helper()
	path := name
	if !strings.Contains(name, "/") {
		if p, err := exec.LookPath(name); err == nil && !strings.HasPrefix(name, "slapenir") {
			path = p
		}
		if _, err := os.Stat(filepath.Join(binDir, name)); err == nil {
			path = filepath.Join(binDir, name)
		}
	}
	cmd := exec.CommandContext(ctx, path, args...)
	cmd.Env = environ
	out, err := cmd.CombinedOutput()
	code := 0
	if err != nil {
		ee, ok := err.(*exec.ExitError)
		if !ok {
			t.Fatalf("%s: %v", name, err)
		}
		code = ee.ExitCode()
	}
	return string(out), code
}
