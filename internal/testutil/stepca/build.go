package stepca

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
)

// Version is the step-ca release the tests run; it builds with Go 1.26.
const Version = "v0.30.2"

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

// Binary returns the path of a step-ca binary, building it on first use. The
// build takes minutes on a small machine, so it is cached in the user's cache
// directory (override with SLAPENIR_STEPCA_BIN to use an existing binary).
func Binary(t testing.TB) string {
	t.Helper()
	buildOnce.Do(func() { binPath, buildErr = build() })
	if buildErr != nil {
		t.Fatalf("step-ca: %v", buildErr)
	}
	return binPath
}

func build() (string, error) {
	if p := os.Getenv("SLAPENIR_STEPCA_BIN"); p != "" {
		return p, nil
	}
	cache, err := os.UserCacheDir()
	if err != nil {
		return "", fmt.Errorf("no cache directory to keep step-ca in (set XDG_CACHE_HOME or HOME): %w", err)
	}
	dir := filepath.Join(cache, "slapenir", "step-ca-"+Version)
	bin := filepath.Join(dir, "step-ca")
	if _, err := os.Stat(bin); err == nil {
		return bin, nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("cannot create %s: %w", dir, err)
	}
	lock, err := os.OpenFile(filepath.Join(dir, ".lock"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return "", fmt.Errorf("cannot open the build lock in %s: %w", dir, err)
	}
	defer lock.Close()
	fmt.Fprintf(os.Stderr, "step-ca: waiting for the build lock %s\n", lock.Name())
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
		return "", fmt.Errorf("cannot lock %s: %w", lock.Name(), err)
	}
	defer syscall.Flock(int(lock.Fd()), syscall.LOCK_UN)
	if _, err := os.Stat(bin); err == nil {
		return bin, nil // another test binary built it while we waited
	}
	// Install into a scratch GOBIN and rename, so an interrupted build never
	// leaves a truncated binary in the cache.
	tmpBin, err := os.MkdirTemp(dir, "build-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(tmpBin)
	fmt.Fprintf(os.Stderr, "step-ca: building %s from the Go module proxy into %s (takes a few minutes, once)\n", Version, dir)
	cmd := exec.Command("go", "install", "github.com/smallstep/certificates/cmd/step-ca@"+Version)
	cmd.Dir = tmpBin
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOBIN="+tmpBin, "GOFLAGS=-buildvcs=false")
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("go install step-ca@%s failed: %w (needs the Go module proxy; or set SLAPENIR_STEPCA_BIN)", Version, err)
	}
	if err := os.Rename(filepath.Join(tmpBin, "step-ca"), bin); err != nil {
		return "", fmt.Errorf("cannot move the built step-ca into %s: %w", dir, err)
	}
	fmt.Fprintf(os.Stderr, "step-ca: built %s\n", bin)
	return bin, nil
}
