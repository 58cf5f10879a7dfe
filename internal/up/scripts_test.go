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
}
