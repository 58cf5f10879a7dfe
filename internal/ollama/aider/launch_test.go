package aider_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/slapenir/slapenir/internal/ollama/aider"
)

// standIn writes an executable "aider" into a new directory that records its
// arguments and OLLAMA_API_BASE into a file, and returns the directory.
func standIn(t *testing.T) (dir, record string) {
	t.Helper()
	dir = t.TempDir()
	record = filepath.Join(dir, "record")
	script := "#!/bin/sh\nprintf '%s\\n' \"$@\" > " + record + "\necho \"OLLAMA_API_BASE=$OLLAMA_API_BASE\" >> " + record + "\n"
	if err := os.WriteFile(filepath.Join(dir, "aider"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	return dir, record
}

func TestAiderCommandRunsAiderWithModelAndAPIBase(t *testing.T) {
	bin, record := standIn(t)
	cfg, err := aider.ConfigFromEnv([]string{
		"PATH=/nonexistent:" + bin,
		"HOME=/home/agent",
		"OLLAMA_MODEL=llama3.2:3b",
		"OLLAMA_PROXY_PORT=9876",
		"OLLAMA_API_BASE=http://elsewhere:11434",
	}, []string{"--message", "add error handling"})
	if err != nil {
		t.Fatal(err)
	}
	cmd, err := aider.AiderCommand(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if cmd.Path != filepath.Join(bin, "aider") {
		t.Errorf("Path = %q, want the aider in %s", cmd.Path, bin)
	}
	wantArgv := []string{"aider", "--model", "ollama_chat/llama3.2:3b", "--message", "add error handling"}
	if !slices.Equal(cmd.Argv, wantArgv) {
		t.Errorf("Argv = %q, want %q", cmd.Argv, wantArgv)
	}
	var bases []string
	for _, kv := range cmd.Env {
		if strings.HasPrefix(kv, "OLLAMA_API_BASE=") {
			bases = append(bases, kv)
		}
	}
	if !slices.Equal(bases, []string{"OLLAMA_API_BASE=http://127.0.0.1:9876"}) || !slices.Contains(cmd.Env, "HOME=/home/agent") {
		t.Errorf("Env = %q, want exactly one OLLAMA_API_BASE, the helper's, and the rest kept", cmd.Env)
	}

	// Run the stand-in the way the wrapper will exec it.
	c := exec.Command(cmd.Path, cmd.Argv[1:]...)
	c.Env = cmd.Env
	if out, err := c.CombinedOutput(); err != nil {
		t.Fatalf("running the stand-in aider: %v\n%s", err, out)
	}
	got, err := os.ReadFile(record)
	if err != nil {
		t.Fatal(err)
	}
	want := "--model\nollama_chat/llama3.2:3b\n--message\nadd error handling\nOLLAMA_API_BASE=http://127.0.0.1:9876\n"
	if string(got) != want {
		t.Errorf("the stand-in aider recorded %q, want %q", got, want)
	}
}

func TestConfigFromEnvDefaults(t *testing.T) {
	cfg, err := aider.ConfigFromEnv([]string{"PATH=/usr/bin"}, nil)
	if err != nil || cfg.Model != "qwen2.5-coder:7b" || cfg.HelperPort != 8765 {
		t.Errorf("ConfigFromEnv = %+v, %v; want the seed's defaults qwen2.5-coder:7b and 8765", cfg, err)
	}
	for _, bad := range []string{"http", "0", "70000", "-1"} {
		_, err := aider.ConfigFromEnv([]string{"OLLAMA_PROXY_PORT=" + bad}, nil)
		if err == nil || !strings.Contains(err.Error(), "OLLAMA_PROXY_PORT=\""+bad+"\"") {
			t.Errorf("OLLAMA_PROXY_PORT=%s: error %v, want one naming the bad value", bad, err)
		}
	}
	if got := aider.APIBase(8765); got != "http://127.0.0.1:8765" {
		t.Errorf("APIBase(8765) = %q", got)
	}
}

func TestAiderMissingSaysHowToInstall(t *testing.T) {
	notExecutable := t.TempDir()
	if err := os.WriteFile(filepath.Join(notExecutable, "aider"), []byte("#!/bin/sh\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	// A relative PATH entry holding an aider must not count either.
	cwdBin, _ := standIn(t)
	t.Chdir(filepath.Dir(cwdBin))

	_, err := aider.AiderCommand(aider.Config{Environ: []string{"PATH=" + notExecutable + "::" + filepath.Base(cwdBin)}})
	if err == nil {
		t.Fatal("AiderCommand found an aider that is not executable or not on an absolute PATH entry")
	}
	for _, want := range []string{"aider is not installed", "pipx install aider-chat", "pip install aider-chat"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
}
