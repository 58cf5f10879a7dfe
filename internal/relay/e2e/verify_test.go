package e2e

import (
	"strings"
	"testing"

	"github.com/slapenir/slapenir/internal/ollama/fake"
)

func TestOllamaVerifyCommand(t *testing.T) {
	ctx := testContext(t)
	proxyURL := startProxy(t, nil)
	f := startFake(t, fake.Options{Models: []string{"llama3"}})
	base := env("SLAPENIR_PROXY_URL="+proxyURL, "OLLAMA_HOST="+strings.TrimPrefix(f.URL(), "http://"))

	out, code := run(t, ctx, append(base, "OLLAMA_MODEL=llama3"), "ollama-verify")
	for _, line := range []string{
		"[ollama-verify] Target: " + f.URL() + "\n",
		"[ollama-verify] Proxy: " + proxyURL + "\n",
		"[ollama-verify] Model: llama3\n",
		"[ollama-verify] Ollama is reachable through proxy!\n",
		"[ollama-verify] Model llama3 is available\n",
	} {
		if !strings.Contains(out, line) {
			t.Errorf("ollama-verify (model present) lacks %q:\n%s", line, out)
		}
	}
	if code != 0 {
		t.Errorf("exit %d, want 0", code)
	}

	out, code = run(t, ctx, base, "ollama-verify")
	if code != 0 || !strings.Contains(out, "[ollama-verify] WARNING: Model qwen2.5-coder:7b is not available") ||
		!strings.Contains(out, "ollama pull qwen2.5-coder:7b") {
		t.Errorf("ollama-verify (model missing): exit %d:\n%s\nwant exit 0, the missing model and the pull to run", code, out)
	}
	if _, code = run(t, ctx, base, "ollama-verify", "--strict"); code != 1 {
		t.Errorf("ollama-verify --strict with the model missing: exit %d, want 1", code)
	}
	_ = f.Close()
	out, code = run(t, ctx, base, "slapenir", "ollama-verify", "--attempts", "2", "--wait", "1ms", "--strict")
	if code != 1 || !strings.Contains(out, "not reachable through proxy after 2 attempts") {
		t.Errorf("ollama-verify with Ollama down: exit %d:\n%s", code, out)
	}
}
