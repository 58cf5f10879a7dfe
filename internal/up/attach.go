package up

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"

	"github.com/slapenir/slapenir/internal/pki/certfile"
)

// attachName is the file a running up leaves in its state directory so
// `slapenir shell` from another terminal can join the agent: where it runs
// and its environment (placeholders only, never a real credential; the
// one-time token is left out). Removed when up stops.
const attachName = "agent-shell.json"

// InAgentEnv is set in the environment of every shell and command up runs
// as the agent: a `slapenir shell` there is already the agent's and must
// not join up again.
const InAgentEnv = "SLAPENIR_AGENT_SHELL"

type attachInfo struct {
	Netns string   `json:"netns,omitempty"` // "" when unconfined
	Bin   string   `json:"bin"`
	Dir   string   `json:"dir"`
	Env   []string `json:"env"`
}

func writeAttach(state string, a attachInfo) (remove func() error, err error) {
	b, err := json.Marshal(a)
	if err != nil {
		return nil, err
	}
	path := filepath.Join(state, attachName)
	if err := certfile.WriteAtomic(path, b, 0o600); err != nil {
		return nil, fmt.Errorf("up: cannot write %s for slapenir shell: %w", path, err)
	}
	return func() error {
		if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
			return err
		}
		return nil
	}, nil
}

// ErrNoUp is Attach's error when no up runs on the state directory.
var ErrNoUp = errors.New("no slapenir up runs")

// Attach is how `slapenir shell` joins the agent of the up running on
// stateDir ("" for up's default): the argv to exec (`slapenir shell` in the
// agent's namespace, args after it), its environment and working
// directory. It returns ErrNoUp when no up holds that directory.
func Attach(stateDir string, args []string) (argv, env []string, dir string, err error) {
	stateDir = chooseStateDir(stateDir, os.Environ())
	lock, err := os.Open(filepath.Join(stateDir, lockName))
	if err != nil {
		return nil, nil, "", fmt.Errorf("%w on the state directory %s (it has no %s)", ErrNoUp, stateDir, lockName)
	}
	defer lock.Close()
	if syscall.Flock(int(lock.Fd()), syscall.LOCK_SH|syscall.LOCK_NB) == nil {
		return nil, nil, "", fmt.Errorf("%w on the state directory %s (nothing holds its %s)", ErrNoUp, stateDir, lockName)
	}
	b, err := os.ReadFile(filepath.Join(stateDir, attachName))
	if err != nil {
		return nil, nil, "", fmt.Errorf("up runs on %s but its agent is not ready to join yet (%v); try again in a moment", stateDir, err)
	}
	var a attachInfo
	if err := json.Unmarshal(b, &a); err != nil {
		return nil, nil, "", fmt.Errorf("%s: %w", filepath.Join(stateDir, attachName), err)
	}
	argv = append([]string{a.Bin, "shell"}, args...)
	if a.Netns != "" {
		argv = append([]string{"ip", "netns", "exec", a.Netns}, argv...)
	}
	return argv, a.Env, a.Dir, nil
}
