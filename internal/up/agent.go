package up

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	agentfiles "github.com/slapenir/slapenir/agent"
	"github.com/slapenir/slapenir/internal/pki/certfile"
)

// agentEnv is the running `slapenir init` of the agent environment.
type agentEnv struct {
	*child
	initPID int // init itself: the child's child when wrapped in ip netns exec/unshare
}

func startAgent(argv, env []string, out io.Writer, wrapped bool) (*agentEnv, error) {
	c, err := startChild(argv, env, out)
	if err != nil {
		return nil, err
	}
	a := &agentEnv{child: c, initPID: c.cmd.Process.Pid}
	if wrapped {
		pid, err := firstChild(a.initPID, c.done)
		if err != nil {
			_ = c.stop(a.initPID, time.Second)
			return nil, err
		}
		a.initPID = pid
	}
	return a, nil
}

// firstChild waits for pid's first child (unshare --fork's init) to appear.
func firstChild(pid int, exited <-chan struct{}) (int, error) {
	path := fmt.Sprintf("/proc/%d/task/%d/children", pid, pid)
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		// The wrapper is ip, then exec'd unshare: its child is init.
		if b, err := os.ReadFile(path); err == nil {
			if f := strings.Fields(string(b)); len(f) > 0 {
				return strconv.Atoi(f[0])
			}
		}
		select {
		case <-exited:
			return 0, errors.New("up: the agent's namespace wrapper (ip netns exec … unshare) exited before starting init; is util-linux's unshare installed?")
		case <-time.After(20 * time.Millisecond):
		}
	}
	return 0, fmt.Errorf("up: init did not start under pid %d within 10s", pid)
}

// stop sends SIGTERM to init, which stops its services in order.
func (a *agentEnv) stop(grace time.Duration) error { return a.child.stop(a.initPID, grace) }

// agentDirs makes the agent's home, certificate directory and workspace. As
// root they belong to the agent user, and the state directory is made
// traversable so that user can reach them.
func agentDirs(state, home, certs, workspace string, root bool) error {
	for _, d := range []struct {
		path string
		mode os.FileMode
	}{{home, 0o755}, {certs, 0o700}, {workspace, 0o755}} {
		if err := os.MkdirAll(d.path, d.mode); err != nil {
			return fmt.Errorf("up: cannot create %s: %w", d.path, err)
		}
	}
	if !root {
		return nil
	}
	if err := os.Chmod(state, 0o711); err != nil {
		return err
	}
	return chownTree(home)
}

// chownTree gives dir and everything below it to the agent user.
func chownTree(dir string) error {
	return filepath.WalkDir(dir, func(path string, _ fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if err := os.Lchown(path, agentID, agentID); err != nil {
			return fmt.Errorf("up: cannot give %s to the agent user (uid 1000): %w", path, err)
		}
		return nil
	})
}

// installBinary puts a copy of exe named "slapenir" into dir, which goes
// first on the services' PATH: the service file calls "slapenir …" like the
// container's does. A copy, not a link: the binary `go run` builds lives in a
// directory only its owner can enter, and the services run as uid 1000.
func installBinary(dir, exe string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("up: cannot create %s: %w", dir, err)
	}
	src, err := os.Open(exe)
	if err != nil {
		return fmt.Errorf("up: cannot read its own binary %s: %w", exe, err)
	}
	defer src.Close()
	dst := filepath.Join(dir, "slapenir")
	if err := certfile.WriteAtomicFrom(dst, src, 0o755, certfile.AtomicOptions{}); err != nil {
		return fmt.Errorf("up: cannot install the binary as %s: %w", dst, err)
	}
	return nil
}

// scriptNames are the seed's /home/agent/scripts, each a name the slapenir
// binary answers to.
var scriptNames = []string{"bootstrap-certs", "ollama-proxy-helper", "ollama-verify", "aider-ollama"}

// linkScripts makes the agent's scripts directory: the seed's script names
// as symlinks to the binary, so `aider-ollama` works inside the agent, and
// the seed's Option C, ollama-proxy-helper.py, which execs the symlink
// beside it: the same file the image has (package agentfiles).
func linkScripts(dir, binary string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("up: cannot create %s: %w", dir, err)
	}
	for _, name := range scriptNames {
		link := filepath.Join(dir, name)
		_ = os.Remove(link)
		if err := os.Symlink(binary, link); err != nil {
			return fmt.Errorf("up: cannot link %s: %w", link, err)
		}
	}
	py := filepath.Join(dir, agentfiles.OllamaProxyHelperPyName)
	if err := certfile.WriteAtomic(py, agentfiles.OllamaProxyHelperPy, 0o755); err != nil {
		return fmt.Errorf("up: cannot write %s: %w", py, err)
	}
	return nil
}

// writeWgetrc gives the agent's wget the CA bundle: wget (GnuTLS on
// Debian) reads none of the variables the other tools do, only its
// ca_certificate setting. An existing ~/.wgetrc is the user's and is left
// alone.
func writeWgetrc(home, bundle string, root bool) error {
	path := filepath.Join(home, ".wgetrc")
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if errors.Is(err, fs.ErrExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("up: cannot write %s: %w", path, err)
	}
	_, err = fmt.Fprintf(f, "# Written by slapenir up: the agent's one CA bundle (as SSL_CERT_FILE).\nca_certificate = %s\n", bundle)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil && root {
		err = os.Lchown(path, agentID, agentID)
	}
	return err
}
