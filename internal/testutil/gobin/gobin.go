// Package gobin gives tests the binaries of tools built from the Go module
// proxy (step-ca, helm, ollama), built on first use and kept in the user's cache
// directory, since a build takes minutes on a small machine; and, by Cached,
// anything else tests make once per machine (a plugin built in its own
// module, a created model).
//
// It must only be imported from tests. It owns building and caching, not
// running the tools.
package gobin

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
)

// Tool is a binary built with go install Package@Version.
type Tool struct {
	Name    string // the binary's name: "step-ca"
	Package string // "github.com/smallstep/certificates/cmd/step-ca"
	Version string // "v0.30.2"
	// Env names a variable that, when set, is the path of a binary to use
	// instead of building one.
	Env string
	// Cgo builds with CGO_ENABLED=1 (the default is a static build).
	Cgo bool
	// LDFlags are passed to go install's -ldflags (a version stamp).
	LDFlags string
	// Setup, when set, runs under the build lock before the build, in a
	// scratch directory removed after it, and returns variables to add to
	// the build's environment (headers a cgo build needs, say).
	Setup func(scratch string) ([]string, error)
}

var (
	mu    sync.Mutex
	built = map[string]*result{} // by Name@Version
)

type result struct {
	once sync.Once
	path string
	err  error
}

// Binary returns the path of t's binary, building it on first use (once
// per process, and once per machine across processes: the build holds a
// lock in the cache directory).
func Binary(tb testing.TB, t Tool) string {
	tb.Helper()
	mu.Lock()
	key := t.Name + "@" + t.Version
	r := built[key]
	if r == nil {
		r = &result{}
		built[key] = r
	}
	mu.Unlock()
	r.once.Do(func() { r.path, r.err = build(t) })
	if r.err != nil {
		tb.Fatalf("%s: %v", t.Name, r.err)
	}
	return r.path
}

// Cached returns the directory ~/.cache/slapenir/NAME once ready says it
// holds what it should, calling make to fill it first if not — under a
// lock in the directory, so that of the test processes wanting it at once
// one makes it and the others wait and use it. make must leave the
// directory ready only when it succeeds (build in a scratch directory and
// rename), so an interrupted run is made again, never half used.
func Cached(name string, ready func(dir string) bool, make func(dir string) error) (string, error) {
	cache, err := os.UserCacheDir()
	if err != nil {
		return "", fmt.Errorf("no cache directory to keep %s in (set XDG_CACHE_HOME or HOME): %w", name, err)
	}
	dir := filepath.Join(cache, "slapenir", name)
	if ready(dir) {
		return dir, nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("cannot create %s: %w", dir, err)
	}
	lock, err := os.OpenFile(filepath.Join(dir, ".lock"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return "", fmt.Errorf("cannot open the lock in %s: %w", dir, err)
	}
	defer lock.Close()
	fmt.Fprintf(os.Stderr, "%s: waiting for the lock %s\n", name, lock.Name())
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
		return "", fmt.Errorf("cannot lock %s: %w", lock.Name(), err)
	}
	defer syscall.Flock(int(lock.Fd()), syscall.LOCK_UN)
	if ready(dir) {
		return dir, nil // another test process made it while we waited
	}
	if err := make(dir); err != nil {
		return "", err
	}
	return dir, nil
}

// exists says whether path is there.
func exists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

func build(t Tool) (string, error) {
	if p := os.Getenv(t.Env); t.Env != "" && p != "" {
		return p, nil
	}
	dir, err := Cached(t.Name+"-"+t.Version, func(dir string) bool { return exists(filepath.Join(dir, t.Name)) },
		func(dir string) error { return install(t, dir) })
	return filepath.Join(dir, t.Name), err
}

// install builds t into dir.
func install(t Tool, dir string) error {
	bin := filepath.Join(dir, t.Name)
	// Install into a scratch GOBIN and rename, so an interrupted build never
	// leaves a truncated binary in the cache.
	tmpBin, err := os.MkdirTemp(dir, "build-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmpBin)
	fmt.Fprintf(os.Stderr, "%s: building %s from the Go module proxy into %s (takes a few minutes, once)\n", t.Name, t.Version, dir)
	args := []string{"install"}
	if t.LDFlags != "" {
		args = append(args, "-ldflags", t.LDFlags)
	}
	cgo := "CGO_ENABLED=0"
	if t.Cgo {
		cgo = "CGO_ENABLED=1"
	}
	cmd := exec.Command("go", append(args, t.Package+"@"+t.Version)...)
	cmd.Dir = tmpBin
	cmd.Env = append(os.Environ(), cgo, "GOBIN="+tmpBin, "GOFLAGS=-buildvcs=false")
	if t.Setup != nil {
		scratch, err := os.MkdirTemp(dir, "setup-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(scratch)
		extra, err := t.Setup(scratch)
		if err != nil {
			return fmt.Errorf("preparing the build of %s: %w", t.Name, err)
		}
		cmd.Env = append(cmd.Env, extra...)
	}
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		hint := ""
		if t.Env != "" {
			hint = "; or set " + t.Env
		}
		return fmt.Errorf("go install %s@%s failed: %w (needs the Go module proxy%s)", t.Package, t.Version, err, hint)
	}
	if err := os.Rename(filepath.Join(tmpBin, t.Name), bin); err != nil {
		return fmt.Errorf("cannot move the built %s into %s: %w", t.Name, dir, err)
	}
	fmt.Fprintf(os.Stderr, "%s: built %s\n", t.Name, bin)
	return nil
}
