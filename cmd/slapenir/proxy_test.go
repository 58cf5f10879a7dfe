package main

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/slapenir/slapenir/internal/testutil/syncbuf"
)

// TestProxyCommandFirstRun runs the README's first command as a newcomer
// would: `slapenir proxy` on a state directory that does not exist yet, a
// client certificate from `certs dev-issue`, one request through it, then
// SIGTERM: a clean exit with the audit log flushed and its chain intact.
func TestProxyCommandFirstRun(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "hello from upstream") }))
	defer up.Close()
	p := startProxyBinary(t)
	bin, state, auditFile, cmd, exited, stderr := p.bin, p.state, p.auditFile, p.cmd, p.exited, p.stderr
	resp, err := p.client.Get(up.URL + "/")
	if err != nil {
		t.Fatalf("request through the proxy: %v\n%s", err, stderr.String())
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(body) != "hello from upstream" {
		t.Fatalf("got %d %q", resp.StatusCode, body)
	}
	p.client.CloseIdleConnections()

	cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-exited:
		if err != nil {
			t.Fatalf("proxy did not exit cleanly on SIGTERM: %v\n%s", err, stderr.String())
		}
	case <-time.After(15 * time.Second):
		t.Fatal("proxy did not stop on SIGTERM")
	}
	if !strings.Contains(stderr.String(), "audit log flushed") {
		t.Errorf("no shutdown message:\n%s", stderr.String())
	}
	// The log is keyed by the state directory's audit key and checkpointed
	// there: it verifies with both, and not without the key.
	key, cp := filepath.Join(state, "audit.key"), filepath.Join(state, "audit.checkpoint")
	out, err := exec.Command(bin, "audit", "verify", auditFile, "--key", key, "--checkpoint", cp).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "2 records, chain ok (HMAC-SHA256 under the audit key)") || !strings.Contains(string(out), "checkpoint: the log reaches seq 2") {
		t.Fatalf("audit verify --key --checkpoint: %v\n%s", err, out)
	}
	if fi, err := os.Stat(key); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("audit key %s: %v %v, want mode 0600", key, fi, err)
	}
	out, err = exec.Command(bin, "audit", "verify", auditFile).CombinedOutput()
	if err == nil || !strings.Contains(string(out), "verify with --key") {
		t.Fatalf("audit verify without the key must fail and say to use --key: %v\n%s", err, out)
	}
	// Emptying the log is a cut the checkpoint sees.
	if err := os.WriteFile(auditFile, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	out, err = exec.Command(bin, "audit", "verify", auditFile, "--key", key, "--checkpoint", cp).CombinedOutput()
	if err == nil || !strings.Contains(string(out), "the newest 2 record(s) were cut off") {
		t.Fatalf("audit verify of an emptied log against its checkpoint: %v\n%s", err, out)
	}
}

// TestProxyAuditVerifyWhileRunning: the verify command the proxy's users
// are given (with --key and --checkpoint from its state directory) works
// from the first request, while the proxy runs: the checkpoint is written
// when the log is opened, not only after CheckpointEvery records or a stop.
func TestProxyAuditVerifyWhileRunning(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "hello") }))
	defer up.Close()
	p := startProxyBinary(t)
	resp, err := p.client.Get(up.URL + "/")
	if err != nil {
		t.Fatalf("request through the proxy: %v\n%s", err, p.stderr.String())
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	p.client.CloseIdleConnections()
	key, cp := filepath.Join(p.state, "audit.key"), filepath.Join(p.state, "audit.checkpoint")
	deadline := time.Now().Add(10 * time.Second)
	for {
		// The outcome record is written as the response ends; wait for it.
		out, err := exec.Command(p.bin, "audit", "verify", p.auditFile, "--key", key, "--checkpoint", cp).CombinedOutput()
		if err == nil && strings.Contains(string(out), "2 records, chain ok (HMAC-SHA256 under the audit key)") {
			if !strings.Contains(string(out), "checkpoint: recorded at ") || !strings.Contains(string(out), "when the proxy opened the log empty; it covers no record yet") ||
				!strings.Contains(string(out), "note: the 2 record(s) after seq 0 are newer than the checkpoint") {
				t.Fatalf("audit verify while the proxy runs says too little about its checkpoint:\n%s", out)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("audit verify --key --checkpoint while the proxy runs: %v\n%s", err, out)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if p.cmd.ProcessState != nil {
		t.Fatalf("the proxy stopped:\n%s", p.stderr.String())
	}
}

// proxyBinary is `slapenir proxy` built from this package and running on a
// fresh state directory, with an agent certificate from `certs dev-issue`.
type proxyBinary struct {
	bin, state, auditFile string
	config, addr          string // the --config file and the listen address
	cmd                   *exec.Cmd
	exited                chan error
	stderr                *syncbuf.Buffer
	client                *http.Client // uses the proxy, with the agent's certificate
}

func startProxyBinary(t *testing.T, args ...string) *proxyBinary {
	t.Helper()
	return startProxyBinaryWith(t, "", args...)
}

// startProxyBinaryWith is startProxyBinary with extra top-level YAML in
// the config file.
func startProxyBinaryWith(t *testing.T, extra string, args ...string) *proxyBinary {
	t.Helper()
	dir := t.TempDir()
	bin := buildBinary(t)
	addr := freeLoopback(t)
	state := filepath.Join(dir, "fresh", "state")
	auditFile := filepath.Join(dir, "audit", "audit.jsonl")
	cfg := filepath.Join(dir, "proxy.yaml")
	os.WriteFile(cfg, []byte(fmt.Sprintf("listen: %q\npolicy:\n  private_allow: [\"127.0.0.1/32\"]\naudit:\n  file: %q\n  stdout: false\n", addr, auditFile)+extra), 0o600)

	stderr := &syncbuf.Buffer{}
	cmd := exec.Command(bin, append([]string{"proxy", "--config", cfg, "--state-dir", state}, args...)...)
	cmd.Stderr = stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			cmd.Process.Kill()
		}
	})
	certs := filepath.Join(dir, "agent-certs")
	root := filepath.Join(state, "dev-ca", "root_ca.pem")
	deadline := time.Now().Add(20 * time.Second)
	for {
		if _, err := os.Stat(root); err == nil {
			if c, err := tls.Dial("tcp", addr, &tls.Config{InsecureSkipVerify: true}); err == nil {
				c.Close()
				break
			}
		}
		select {
		case err := <-exited:
			t.Fatalf("proxy exited at start: %v\n%s", err, stderr.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("proxy did not come up:\n%s", stderr.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	if out, err := exec.Command(bin, "certs", "dev-issue", "agent-1", "--out", certs, "--state-dir", state).CombinedOutput(); err != nil {
		t.Fatalf("dev-issue: %v\n%s", err, out)
	}
	pair, err := tls.LoadX509KeyPair(filepath.Join(certs, "cert.pem"), filepath.Join(certs, "key.pem"))
	if err != nil {
		t.Fatal(err)
	}
	pem, _ := os.ReadFile(filepath.Join(certs, "root_ca.pem"))
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pem)
	client := &http.Client{Transport: &http.Transport{
		Proxy:           http.ProxyURL(&url.URL{Scheme: "https", Host: addr}),
		TLSClientConfig: &tls.Config{RootCAs: pool, Certificates: []tls.Certificate{pair}},
	}}
	return &proxyBinary{bin: bin, state: state, auditFile: auditFile, config: cfg, addr: addr, cmd: cmd, exited: exited, stderr: stderr, client: client}
}

// TestProxyKilledMidStreamLeavesATrace: SIGKILL of the proxy while a
// stream is in flight cannot write the request's outcome, but the request
// was recorded before it was forwarded: audit verify and show name it as
// forwarded with no end.
func TestProxyKilledMidStreamLeavesATrace(t *testing.T) {
	streaming := make(chan struct{})
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/x-ndjson")
		io.WriteString(w, `{"response":"first token"}`+"\n")
		w.(http.Flusher).Flush()
		close(streaming)
		<-r.Context().Done()
	}))
	defer up.Close()
	p := startProxyBinary(t)
	resp, err := p.client.Get(up.URL + "/api/generate")
	if err != nil {
		t.Fatalf("request through the proxy: %v\n%s", err, p.stderr.String())
	}
	defer resp.Body.Close()
	<-streaming
	if err := p.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	<-p.exited
	key := filepath.Join(p.state, "audit.key")
	out, err := exec.Command(p.bin, "audit", "verify", p.auditFile, "--key", key).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "1 records, chain ok") || !strings.Contains(string(out), "was forwarded but has no end record: the proxy stopped while it was in flight") {
		t.Fatalf("audit verify after SIGKILL mid-stream: %v\n%s", err, out)
	}
	show := exec.Command(p.bin, "audit", "show", p.auditFile)
	var showErr bytes.Buffer
	show.Stderr = &showErr
	showOut, err := show.Output()
	if err != nil || !strings.Contains(string(showOut), " start allow forward GET http://127.0.0.1:") || !strings.Contains(showErr.String(), "was forwarded but has no end record") {
		t.Fatalf("audit show after SIGKILL mid-stream: %v\n%s\n%s", err, showOut, showErr.String())
	}
}

// TestProxyMetricsListen: with metrics.listen the proxy also serves
// /metrics, and nothing else, in plain HTTP on that address (for an
// in-cluster Prometheus).
func TestProxyMetricsListen(t *testing.T) {
	metrics := freeLoopback(t)
	p := startProxyBinaryWith(t, fmt.Sprintf("metrics:\n  listen: %q\n", metrics))
	body := getOnceUp(t, "http://"+metrics+"/metrics")
	if !strings.Contains(body, "slapenir_proxy_tunnels_open") {
		t.Fatalf("metrics.listen /metrics:\n%.500s", body)
	}
	resp, err := http.Get("http://" + metrics + "/health")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 404 {
		t.Errorf("/health on the metrics address: %d, want 404 (only /metrics is served there)", resp.StatusCode)
	}
	if !strings.Contains(p.stderr.String(), "serving metrics") {
		t.Errorf("the log does not say where metrics are served:\n%s", p.stderr.String())
	}
}

// TestProxyWarnsOfPlaintextToPublicHosts: the proxy starts with
// plaintext_http on a public host, and its log says so with the line.
func TestProxyWarnsOfPlaintextToPublicHosts(t *testing.T) {
	file := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(file, []byte("ci-token-value-0123456789"), 0o600); err != nil {
		t.Fatal(err)
	}
	p := startProxyBinaryWith(t, fmt.Sprintf("secrets:\n  credentials:\n    - name: ci\n      file: %q\n      hosts: [api.example.com]\n      plaintext_http: true\n", file))
	log := p.stderr.String()
	if !strings.Contains(log, "level=WARN") || !strings.Contains(log, `credential \"ci\" goes over plain http`) || !strings.Contains(log, "line=12") {
		t.Fatalf("the proxy's start-up log lacks the plaintext_http warning:\n%s", log)
	}
}

// TestProxyWarnsWhenAValueDelaysStreams: a credential with characters
// beyond Latin-1 lets the redactor keep back line breaks (it must look for
// the value in UTF-16 too), so LLM streams may arrive late; the proxy says
// so at start, without the value.
func TestProxyWarnsWhenAValueDelaysStreams(t *testing.T) {
	value := "prix-en-€-très-secret"
	file := filepath.Join(t.TempDir(), "euro")
	if err := os.WriteFile(file, []byte(value), 0o600); err != nil {
		t.Fatal(err)
	}
	p := startProxyBinaryWith(t, fmt.Sprintf("secrets:\n  credentials:\n    - name: euro\n      file: %q\n      hosts: [api.example.com]\n", file))
	log := p.stderr.String()
	if !strings.Contains(log, "beyond Latin-1") || strings.Contains(log, value) {
		t.Fatalf("the proxy's start-up log lacks the warning, or holds the value:\n%s", log)
	}
}
