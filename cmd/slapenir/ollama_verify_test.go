package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestOllamaVerifySaysHowToListen: an Ollama the proxy cannot reach on the
// host (the compose default, host.docker.internal) gets the warning that
// says how to make a Linux host's Ollama reachable from containers, not
// only "listens where OLLAMA_HOST says"; one on loopback does not.
func TestOllamaVerifySaysHowToListen(t *testing.T) {
	p := startProxyBinary(t)
	certs := filepath.Join(filepath.Dir(p.config), "agent-certs")
	run := func(ollamaHost string) string {
		cmd := exec.Command(p.bin, "ollama-verify", "--certs", certs, "--proxy", "https://"+p.addr,
			"--ollama-host", ollamaHost, "--attempts", "1", "--wait", "1ms")
		cmd.Env = os.Environ()
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Errorf("ollama-verify is advisory (exit 0 without --strict): %v", err)
		}
		return string(out)
	}
	out := run("host.docker.internal.invalid:11434")
	for _, want := range []string{
		"[ollama-verify] WARNING: Ollama is not reachable through proxy",
		"[ollama-verify] Ollama on a Linux host listens on 127.0.0.1:11434 by default, which containers cannot reach: start it with OLLAMA_HOST=0.0.0.0 ollama serve",
		"Environment=\"OLLAMA_HOST=0.0.0.0\"",
		"ip -4 addr show docker0",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("the unreachable warning lacks %q:\n%s", want, out)
		}
	}
	if out := run(freeLoopback(t)); strings.Contains(out, "OLLAMA_HOST=0.0.0.0") || !strings.Contains(out, "not reachable") {
		t.Errorf("an Ollama on loopback is told about containers:\n%s", out)
	}
}
