package e2e

import (
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/slapenir/slapenir/internal/ollama/fake"
)

// standInAider records what aider-ollama ran it with, and calls the helper
// the way Aider would, so the record proves the helper it started works.
const standInAider = `#!/bin/sh
{
  for a in "$@"; do echo "arg=$a"; done
  echo "OLLAMA_API_BASE=$OLLAMA_API_BASE"
  echo "--- settings"
  cat "$HOME/.aider.model.settings.yml"
  echo "--- tags"
  curl -sS --fail "$OLLAMA_API_BASE/api/tags"
} > "$RECORD" 2>&1
exit 7
`

func TestAiderOllama(t *testing.T) {
	ctx := testContext(t)
	f := startFake(t, fake.Options{})
	proxyURL := startProxy(t, nil)
	home := t.TempDir()
	tools := t.TempDir()
	if err := os.WriteFile(filepath.Join(tools, "aider"), []byte(standInAider), 0o755); err != nil {
		t.Fatal(err)
	}
	record := filepath.Join(t.TempDir(), "record")
	port := strconv.Itoa(freePort(t))
	environ := env("HOME="+home, "RECORD="+record, "SLAPENIR_PROXY_URL="+proxyURL,
		"OLLAMA_HOST="+strings.TrimPrefix(f.URL(), "http://"), "OLLAMA_PROXY_PORT="+port,
		"OLLAMA_API_BASE=http://elsewhere:1")
	for i, kv := range environ {
		if strings.HasPrefix(kv, "PATH=") {
			environ[i] = kv + ":" + tools
		}
	}
	t.Cleanup(func() { killHelper(t, port) })

	out, code := run(t, ctx, environ, "aider-ollama", "--message", "add error handling")
	if code != 7 {
		t.Fatalf("aider-ollama exited %d, want the stand-in aider's 7 (it must exec aider):\n%s", code, out)
	}
	if !strings.Contains(out, "aider-ollama: started the Ollama helper on 127.0.0.1:"+port) {
		t.Errorf("output %q does not say the helper was started", out)
	}
	rec := readRecord(t, record)
	wantArgs := "arg=--model\narg=ollama_chat/qwen2.5-coder:7b\narg=--message\narg=add error handling\n"
	if !strings.Contains(rec, wantArgs) {
		t.Errorf("aider ran with:\n%s\nwant args:\n%s", rec, wantArgs)
	}
	if !strings.Contains(rec, "OLLAMA_API_BASE=http://127.0.0.1:"+port+"\n") {
		t.Errorf("aider's OLLAMA_API_BASE is not the helper:\n%s", rec)
	}
	if !strings.Contains(rec, "name: ollama_chat/qwen2.5-coder:7b") || !strings.Contains(rec, "num_ctx: 16384") {
		t.Errorf("settings file aider saw:\n%s\nwant an entry for the model with num_ctx: 16384", rec)
	}
	if !strings.Contains(rec, `"name":"qwen2.5-coder:7b"`) {
		t.Errorf("aider's call to $OLLAMA_API_BASE/api/tags did not reach Ollama through the helper:\n%s", rec)
	}

	// Second run: the helper answers already, none is started, and the
	// user's own settings stay as they are.
	settings := filepath.Join(home, ".aider.model.settings.yml")
	mine := []byte("- name: ollama_chat/qwen2.5-coder:7b\n  extra_params:\n    num_ctx: 4096\n")
	if err := os.WriteFile(settings, mine, 0o644); err != nil {
		t.Fatal(err)
	}
	out, code = run(t, ctx, environ, "aider-ollama")
	if code != 7 || strings.Contains(out, "started the Ollama helper") {
		t.Errorf("second run: exit %d, output %q; want aider run with the running helper", code, out)
	}
	if got, _ := os.ReadFile(settings); string(got) != string(mine) {
		t.Errorf("the user's settings file was changed:\n%s", got)
	}
	if rec := readRecord(t, record); !strings.HasPrefix(rec, "arg=--model\narg=ollama_chat/qwen2.5-coder:7b\nOLLAMA_API_BASE=") {
		t.Errorf("second run args:\n%s\nwant only --model", rec)
	}
}

func TestAiderOllamaWithoutAider(t *testing.T) {
	ctx := testContext(t)
	port := strconv.Itoa(freePort(t))
	out, code := run(t, ctx, env("HOME="+t.TempDir(), "OLLAMA_PROXY_PORT="+port, "SLAPENIR_PROXY_URL=http://127.0.0.1:1"), "aider-ollama")
	if code == 0 || !strings.Contains(out, "pipx install aider-chat") {
		t.Errorf("aider-ollama without aider: exit %d: %s; want non-zero and how to install it", code, out)
	}
	if c, err := net.DialTimeout("tcp", "127.0.0.1:"+port, time.Second); err == nil {
		c.Close()
		t.Error("a helper was started although aider is missing")
	}
}

func readRecord(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("the stand-in aider left no record: %v", err)
	}
	return string(b)
}

// killHelper stops the helper aider-ollama started for this test: it runs in
// its own session, so it is found by its command line (our binary, the
// helper subcommand and this test's port) and killed by its PID.
func killHelper(t *testing.T, port string) {
	entries, _ := os.ReadDir("/proc")
	want := filepath.Join(binDir, "slapenir") + "\x00ollama-proxy-helper\x00" + port + "\x00"
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		cmdline, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err == nil && string(cmdline) == want {
			_ = syscall.Kill(pid, syscall.SIGTERM)
			t.Logf("stopped the helper (pid %d)", pid)
		}
	}
}

// TestAiderOllamaReportsAHelperThatCannotStart: without the agent's
// certificate the helper exits at once; aider-ollama says so instead of
// waiting, and does not run Aider against a helper that is not there.
func TestAiderOllamaReportsAHelperThatCannotStart(t *testing.T) {
	ctx := testContext(t)
	tools := t.TempDir()
	if err := os.WriteFile(filepath.Join(tools, "aider"), []byte("#!/bin/sh\nexit 7\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	port := strconv.Itoa(freePort(t))
	environ := env("HOME="+t.TempDir(), "OLLAMA_PROXY_PORT="+port, "SLAPENIR_PROXY_URL=https://127.0.0.1:1", "TMPDIR="+t.TempDir())
	for i, kv := range environ {
		if strings.HasPrefix(kv, "PATH=") {
			environ[i] = kv + ":" + tools
		}
	}
	out, code := run(t, ctx, environ, "aider-ollama")
	if code != 1 || !strings.Contains(out, "the helper stopped (exit status 1)") || !strings.Contains(out, "ollama-proxy-helper.log") {
		t.Errorf("aider-ollama with a helper that cannot start: exit %d: %s; want 1, the helper's exit and its log", code, out)
	}
}
