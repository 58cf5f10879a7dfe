package up

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestScriptsAnswerToTheSeedsNames builds the binary and checks that each
// link in the agent's scripts directory runs it under the seed's name.
func TestScriptsAnswerToTheSeedsNames(t *testing.T) {
	dir := t.TempDir()
	bin := filepath.Join(dir, "slapenir")
	if out, err := exec.Command("go", "build", "-o", bin, "../../cmd/slapenir").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	scripts := filepath.Join(dir, "home", "scripts")
	if err := linkScripts(scripts, bin); err != nil {
		t.Fatal(err)
	}
	if err := linkScripts(scripts, bin); err != nil { // twice: idempotent
		t.Fatal(err)
	}
	for _, name := range scriptNames {
		target, err := os.Readlink(filepath.Join(scripts, name))
		if err != nil || target != bin {
			t.Fatalf("%s -> %q (%v)", name, target, err)
		}
	}
	// Without a token, bootstrap-certs says what is missing: proof the link
	// reaches `slapenir certs bootstrap`.
	cmd := exec.Command(filepath.Join(scripts, "bootstrap-certs"), "--dir", filepath.Join(dir, "certs"))
	cmd.Env = []string{"PATH=/usr/bin:/bin"}
	out, err := cmd.CombinedOutput()
	if err == nil || !strings.Contains(string(out), "STEP_TOKEN") {
		t.Fatalf("bootstrap-certs without a token: %v\n%s", err, out)
	}

	// The seed's Option C: python3 …/scripts/ollama-proxy-helper.py runs
	// the helper (its usage proves the binary answered as
	// ollama-proxy-helper), arguments passed through.
	py := filepath.Join(scripts, "ollama-proxy-helper.py")
	if fi, err := os.Stat(py); err != nil || fi.Mode().Perm() != 0o755 {
		t.Fatalf("%s: %v %v, want mode 0755", py, fi, err)
	}
	if _, err := exec.LookPath("python3"); err != nil {
		t.Skip("no python3 to run ollama-proxy-helper.py")
	}
	cmd = exec.Command("python3", py, "-h")
	cmd.Env = []string{"PATH=/usr/bin:/bin"}
	out, _ = cmd.CombinedOutput()
	if !strings.Contains(string(out), "usage: ollama-proxy-helper [flags] [PORT]") {
		t.Fatalf("python3 %s -h:\n%s", py, out)
	}
}
