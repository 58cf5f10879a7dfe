package realollama

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/slapenir/slapenir/internal/testutil/gobin"
	"github.com/slapenir/slapenir/internal/testutil/syncbuf"
)

// Model is the name of the tiny model in every models directory ModelsDir
// hands out, as /api/tags lists it.
const Model = "slapenir-tiny:latest"

// DefaultTokens is how many tokens the model answers when the request sets
// no num_predict: it never emits its end token, so every answer is this
// long (done_reason "length").
const DefaultTokens = 12

// modelfile creates Model from the safetensors directory at %s, answering
// %d tokens by default. One thread keeps it cheap on a shared CPU, a small
// context keeps the KV cache a few hundred kilobytes, and a fixed seed
// makes answers repeatable. It samples (temperature 1, top_k 40) rather
// than decoding greedily: a random model decoded greedily soon repeats one
// token, and Ollama ends a stream after 30 repeats without its done line
// (llm/server.go, "token repeat limit"). The template is what a chat's
// messages become; the model has none of its own.
const modelfile = `FROM %s
TEMPLATE """{{- range .Messages }}<|{{ .Role }}|>{{ .Content }}
{{ end }}<|assistant|>"""
PARAMETER num_thread 1
PARAMETER temperature 1
PARAMETER top_k 40
PARAMETER seed 24
PARAMETER num_ctx 512
PARAMETER num_predict %d
`

// Options configures Start. The zero value serves a fresh copy of the
// model on a free port of 127.0.0.1.
type Options struct {
	// Addr is where Ollama listens (its OLLAMA_HOST), e.g. "0.0.0.0:0" for
	// containers to reach it. Empty means 127.0.0.1; port 0 means a free
	// port. On a loopback address Ollama applies its Host check.
	Addr string
	// ModelsDir is the models directory to serve; empty means a fresh copy
	// from ModelsDir.
	ModelsDir string
	// Env is added to Ollama's environment, e.g. "OLLAMA_ORIGINS=…".
	Env []string
}

// Server is a running `ollama serve`.
type Server struct {
	URL       string // "http://127.0.0.1:40123" (loopback when Addr is 0.0.0.0)
	Addr      string // "127.0.0.1:40123": where it listens, its OLLAMA_HOST
	ModelsDir string // its OLLAMA_MODELS

	cmd  *exec.Cmd
	log  *syncbuf.Buffer
	done chan struct{}
	err  error
}

// Start runs `ollama serve` with opts, waits until it answers, and stops it
// when the test ends (its log is shown if the test failed).
func Start(tb testing.TB, opts Options) *Server {
	tb.Helper()
	bin := Binary(tb)
	models := opts.ModelsDir
	if models == "" {
		models = ModelsDir(tb)
	}
	addr, err := freeAddr(opts.Addr)
	if err != nil {
		tb.Fatalf("realollama: %v", err)
	}
	s, err := serve(bin, addr, models, tb.TempDir(), opts.Env)
	if err != nil {
		tb.Fatalf("realollama: %v", err)
	}
	tb.Cleanup(func() {
		s.Stop()
		if tb.Failed() {
			tb.Logf("--- ollama serve on %s (last 16 KB of its log) ---\n%s", s.Addr, tail(s.Logs(), 16<<10))
		}
	})
	return s
}

// Logs returns what Ollama has logged so far.
func (s *Server) Logs() string { return s.log.String() }

// Stop stops Ollama (and its model runner) and waits for it; calling it
// again does nothing.
func (s *Server) Stop() {
	select {
	case <-s.done:
		return
	default:
	}
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.done:
	case <-time.After(10 * time.Second):
		_ = syscall.Kill(-s.cmd.Process.Pid, syscall.SIGKILL)
		<-s.done
	}
	// The runner is Ollama's child in the same process group; a server
	// that stopped cleanly has stopped it, one that was killed has not.
	_ = syscall.Kill(-s.cmd.Process.Pid, syscall.SIGKILL)
}

// serve starts `ollama serve` on addr with models and home, and waits for
// it to answer.
func serve(bin, addr, models, home string, env []string) (*Server, error) {
	s := &Server{URL: "http://" + dialable(addr), Addr: addr, ModelsDir: models, log: &syncbuf.Buffer{}, done: make(chan struct{})}
	s.cmd = exec.Command(bin, "serve")
	s.cmd.Env = append(cleanEnv(),
		"HOME="+home, // Ollama keeps its key pair in ~/.ollama
		"OLLAMA_HOST="+addr,
		"OLLAMA_MODELS="+models,
		// Loaded once per server, not unloaded between a test's requests.
		"OLLAMA_KEEP_ALIVE=-1",
		"OLLAMA_NOPRUNE=1",
	)
	s.cmd.Env = append(s.cmd.Env, env...)
	s.cmd.Stdout, s.cmd.Stderr = s.log, s.log
	s.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := s.cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting %s serve: %w", bin, err)
	}
	go func() { s.err = s.cmd.Wait(); close(s.done) }()
	if err := s.waitReady(30 * time.Second); err != nil {
		s.Stop()
		return nil, fmt.Errorf("%w\n--- its log ---\n%s", err, tail(s.Logs(), 16<<10))
	}
	return s, nil
}

func (s *Server) waitReady(limit time.Duration) error {
	c := &http.Client{Timeout: time.Second, Transport: &http.Transport{Proxy: nil}}
	deadline := time.Now().Add(limit)
	for {
		select {
		case <-s.done:
			return fmt.Errorf("ollama serve on %s exited before answering: %v", s.Addr, s.err)
		default:
		}
		resp, err := c.Get(s.URL + "/")
		if err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK && strings.Contains(string(b), "Ollama is running") {
				return nil
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("ollama serve on %s did not answer GET / within %s (last: %v)", s.Addr, limit, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// ModelsDir returns a fresh models directory (in tb.TempDir()) holding
// Model. The first call on a machine makes the model and has Ollama create
// it (a second or so), then keeps the result in the user's cache directory,
// keyed by a hash of everything that went into it.
func ModelsDir(tb testing.TB) string {
	tb.Helper()
	cached, err := createdModels(Binary(tb))
	if err != nil {
		tb.Fatalf("realollama: %v", err)
	}
	dst := filepath.Join(tb.TempDir(), "models")
	if err := copyTree(cached, dst); err != nil {
		tb.Fatalf("realollama: copying the models directory %s: %v", cached, err)
	}
	return dst
}

// createdModels returns the cached models directory holding Model,
// creating it first if it is not there.
func createdModels(bin string) (string, error) {
	files, err := modelFiles()
	if err != nil {
		return "", err
	}
	key := inputsHash(files)
	dir, err := gobin.Cached("ollama-models-"+key,
		func(dir string) bool { _, err := os.Stat(filepath.Join(dir, "models", "manifests")); return err == nil },
		func(dir string) error { return createModels(bin, files, dir) })
	return filepath.Join(dir, "models"), err
}

// createModels creates Model with the real server from files, into
// dir/models.
func createModels(bin string, files map[string][]byte, dir string) error {
	models := filepath.Join(dir, "models")
	work, err := os.MkdirTemp(dir, "create-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)
	src := filepath.Join(work, "safetensors")
	if err := os.Mkdir(src, 0o755); err != nil {
		return err
	}
	for name, b := range files {
		if err := os.WriteFile(filepath.Join(src, name), b, 0o644); err != nil {
			return err
		}
	}
	mf := filepath.Join(work, "Modelfile")
	if err := os.WriteFile(mf, []byte(fmt.Sprintf(modelfile, src, DefaultTokens)), 0o644); err != nil {
		return err
	}
	out := filepath.Join(work, "models")
	home := filepath.Join(work, "home")
	if err := os.Mkdir(home, 0o755); err != nil {
		return err
	}
	addr, err := freeAddr("")
	if err != nil {
		return err
	}
	s, err := serve(bin, addr, out, home, nil)
	if err != nil {
		return err
	}
	defer s.Stop()
	create := exec.Command(bin, "create", strings.TrimSuffix(Model, ":latest"), "-f", mf)
	create.Env = append(cleanEnv(), "HOME="+home, "OLLAMA_HOST="+addr)
	if b, err := create.CombinedOutput(); err != nil {
		return fmt.Errorf("ollama create %s: %v\n%s\n--- the server's log ---\n%s", Model, err, b, tail(s.Logs(), 16<<10))
	}
	s.Stop()
	if err := os.Rename(out, models); err != nil {
		return err
	}
	return nil
}

// inputsHash names a created models directory by everything that decides
// its content: Ollama's version, the Modelfile and the model's files.
func inputsHash(files map[string][]byte) string {
	h := sha256.New()
	fmt.Fprintf(h, "ollama %s\n%s\n", Version, modelfile)
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(h, "%s %d\n", n, len(files[n]))
		h.Write(files[n])
	}
	return hex.EncodeToString(h.Sum(nil))[:16]
}

// cleanEnv is this process's environment without what would steer Ollama
// elsewhere: a developer's OLLAMA_* settings and proxies.
func cleanEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		switch {
		case strings.HasPrefix(k, "OLLAMA_"), k == "HOME",
			strings.EqualFold(k, "http_proxy"), strings.EqualFold(k, "https_proxy"),
			strings.EqualFold(k, "all_proxy"), strings.EqualFold(k, "no_proxy"):
			continue
		}
		env = append(env, kv)
	}
	return env
}

// freeAddr turns addr ("", "host", "host:port", port 0 or absent for any)
// into a host:port with a port free right now.
func freeAddr(addr string) (string, error) {
	host, port := addr, "0"
	if h, p, err := net.SplitHostPort(addr); err == nil {
		host, port = h, p
	}
	if host == "" {
		host = "127.0.0.1"
	}
	if port != "0" {
		return net.JoinHostPort(host, port), nil
	}
	ln, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
	if err != nil {
		return "", fmt.Errorf("no free port on %s for Ollama: %w", host, err)
	}
	defer ln.Close()
	return net.JoinHostPort(host, strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)), nil
}

// dialable is addr with an unspecified host (0.0.0.0, ::) replaced by
// loopback, for this machine's clients.
func dialable(addr string) string {
	host, port, _ := net.SplitHostPort(addr)
	if ip := net.ParseIP(host); ip != nil && ip.IsUnspecified() {
		return net.JoinHostPort("127.0.0.1", port)
	}
	return addr
}

func copyTree(src, dst string) error {
	return filepath.WalkDir(src, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, path)
		target := filepath.Join(dst, rel)
		if d.IsDir() {
			return os.MkdirAll(target, 0o755)
		}
		if !d.Type().IsRegular() {
			return errors.New(path + " is not a regular file")
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		return os.WriteFile(target, b, 0o644)
	})
}

func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return "…" + s[len(s)-n:]
}
