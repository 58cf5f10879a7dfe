package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// slapenir is the binary under test, built once by TestMain.
var slapenir string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "slapenir-e2e-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	// The agent's services run as uid 1000 when the tests are root: they
	// must be able to execute the binary.
	if err := os.Chmod(dir, 0o755); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	slapenir = filepath.Join(dir, "slapenir")
	build := exec.Command("go", "build", "-o", slapenir, "../cmd/slapenir")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintf(os.Stderr, "e2e: building slapenir: %v\n", err)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}
