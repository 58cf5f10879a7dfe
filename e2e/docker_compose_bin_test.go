package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/slapenir/slapenir/internal/testutil/gobin"
)

// The Compose CLI plugin (docker compose, v2 and later), built from the Go
// module proxy: this engine has only Debian's docker-compose 1.29, and the
// seed says docker compose. gobin's go install PACKAGE@VERSION cannot build
// it: compose's go.mod has exclude directives, which go install refuses in a
// module that is not the main one. So it is built the way its Makefile
// does, inside its own module (go build ./cmd with its go.mod in force),
// once per machine, in the same cache directory gobin uses.
const (
	composeModule  = "github.com/docker/compose/v5"
	composeVersion = "v5.6.0"
	composeBinEnv  = "SLAPENIR_COMPOSE_BIN" // a docker-compose plugin binary to use instead
)

var composePlugin struct {
	once sync.Once
	path string
	err  error
}

// composePluginBinary returns the path of the Compose CLI plugin binary.
func composePluginBinary(t *testing.T) string {
	t.Helper()
	composePlugin.once.Do(func() { composePlugin.path, composePlugin.err = buildComposePlugin() })
	if composePlugin.err != nil {
		t.Fatalf("docker compose plugin: %v", composePlugin.err)
	}
	return composePlugin.path
}

func buildComposePlugin() (string, error) {
	if p := os.Getenv(composeBinEnv); p != "" {
		return p, nil
	}
	dir, err := gobin.Cached("docker-compose-"+composeVersion,
		func(dir string) bool { _, err := os.Stat(filepath.Join(dir, "docker-compose")); return err == nil },
		makeComposePlugin)
	return filepath.Join(dir, "docker-compose"), err
}

// makeComposePlugin builds the plugin into dir.
func makeComposePlugin(dir string) error {
	bin := filepath.Join(dir, "docker-compose")
	// The module's source, from the module proxy (read-only in the module
	// cache): copied so that it can be built as the main module.
	out, err := exec.Command("go", "mod", "download", "-json", composeModule+"@"+composeVersion).Output()
	if err != nil {
		return fmt.Errorf("go mod download %s@%s: %v (needs the Go module proxy; or set %s)", composeModule, composeVersion, err, composeBinEnv)
	}
	var mod struct{ Dir string }
	if err := json.Unmarshal(out, &mod); err != nil || mod.Dir == "" {
		return fmt.Errorf("go mod download: no source directory in %s", out)
	}
	src, err := os.MkdirTemp(dir, "src-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(src)
	if out, err := exec.Command("cp", "-R", mod.Dir+"/.", src).CombinedOutput(); err != nil {
		return fmt.Errorf("copying %s: %v %s", mod.Dir, err, out)
	}
	exec.Command("chmod", "-R", "u+w", src).Run()
	fmt.Fprintf(os.Stderr, "docker-compose: building %s@%s into %s (a few minutes, once)\n", composeModule, composeVersion, dir)
	tmp := bin + ".tmp"
	build := exec.Command("go", "build", "-trimpath", "-ldflags", "-w -X "+composeModule+"/internal.Version="+composeVersion, "-o", tmp, "./cmd")
	build.Dir = src
	build.Env = append(os.Environ(), "CGO_ENABLED=0", "GOFLAGS=-buildvcs=false")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		return fmt.Errorf("go build ./cmd in %s@%s: %v", composeModule, composeVersion, err)
	}
	return os.Rename(tmp, bin)
}

// composeCLI is one way of running Compose.
type composeCLI struct {
	name string   // for the subtest: "docker-compose v1", "docker compose v5"
	argv []string // the command before its arguments
	env  []string // extra environment (DOCKER_CONFIG for the plugin)
}

// composeCLIs are the Compose commands this machine can run: Debian's
// docker-compose (v1) when installed, and the plugin, installed as a CLI
// plugin in a DOCKER_CONFIG of the test's own (the user's ~/.docker is
// not touched), so that `docker compose` is what runs.
func composeCLIs(t *testing.T) []composeCLI {
	t.Helper()
	var list []composeCLI
	if _, err := exec.LookPath("docker-compose"); err == nil {
		list = append(list, composeCLI{name: "docker-compose v1", argv: []string{"docker-compose"}})
	}
	cfg := t.TempDir()
	plugins := filepath.Join(cfg, "cli-plugins")
	if err := os.MkdirAll(plugins, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(composePluginBinary(t), filepath.Join(plugins, "docker-compose")); err != nil {
		t.Fatal(err)
	}
	// The user's auths and settings are not needed: nothing is pulled.
	env := []string{"DOCKER_CONFIG=" + cfg}
	ver := exec.Command("docker", "compose", "version")
	ver.Env = append(os.Environ(), env...)
	out, err := ver.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "Docker Compose version "+composeVersion) {
		t.Fatalf("docker compose version with the plugin in %s: %v %q", plugins, err, out)
	}
	t.Logf("%s", strings.TrimSpace(string(out)))
	return append(list, composeCLI{name: "docker compose " + strings.SplitN(composeVersion, ".", 2)[0], argv: []string{"docker", "compose"}, env: env})
}
