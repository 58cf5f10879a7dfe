package up

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/slapenir/slapenir/internal/config"
	"github.com/slapenir/slapenir/internal/initconf"
)

// lockName is the lock file in every state directory: held (flock) for as
// long as an up uses the directory, and holding that up's pid and start
// time, so a second up can say who is in the way.
const lockName = "up.lock"

// ephemeralPrefix names the temporary state directories of --ephemeral runs
// in $TMPDIR; the next up removes those whose up is gone (kill -9 leaves
// one behind, CA keys included).
const ephemeralPrefix = "slapenir-up-"

// stateDir is the state directory of one run, locked.
type stateDir struct {
	path      string
	ephemeral bool // removed at the end
	lock      *os.File
}

// defaultStateDir is where up keeps its state when no --state-dir or
// $SLAPENIR_STATE_DIR is given. As root it is beside the proxy's default
// (/var/lib/slapenir-up), never inside it: `slapenir proxy` keeps its own
// 0700 (its CA keys), and up's services run as uid 1000, which must enter
// every directory above the state directory to reach their binary,
// certificates and workspace. Otherwise the services run as the caller, who
// may enter the proxy's: ~/.local/state/slapenir/up.
func defaultStateDir() string {
	proxy := config.DefaultStateDir()
	if os.Geteuid() == 0 {
		return proxy + "-up"
	}
	return filepath.Join(proxy, "up")
}

// chooseStateDir is the state directory up uses, and slapenir shell looks
// in: the one given, else $SLAPENIR_STATE_DIR of env, else the default.
func chooseStateDir(given string, env []string) string {
	if given != "" {
		return given
	}
	if d := envValue(env, "SLAPENIR_STATE_DIR"); d != "" {
		return d
	}
	return defaultStateDir()
}

// openState creates (or reuses) the state directory and locks it. An
// --ephemeral run gets a fresh temporary directory.
func (o *Options) openState(now time.Time) (*stateDir, error) {
	s := &stateDir{ephemeral: o.Ephemeral}
	if o.Ephemeral {
		dir, err := os.MkdirTemp("", ephemeralPrefix)
		if err != nil {
			return nil, fmt.Errorf("up: cannot create a temporary state directory: %w (give --state-dir instead of --ephemeral)", err)
		}
		s.path = dir
	} else {
		abs, err := filepath.Abs(chooseStateDir(o.StateDir, o.Env))
		if err != nil {
			return nil, err
		}
		if err := os.MkdirAll(abs, 0o755); err != nil {
			return nil, fmt.Errorf("up: cannot create the state directory %s: %w (give --state-dir, or --ephemeral for a temporary one)", abs, err)
		}
		s.path = abs
	}
	f, err := os.OpenFile(filepath.Join(s.path, lockName), os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("up: cannot open the state directory's lock %s: %w", filepath.Join(s.path, lockName), err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		holder, _ := os.ReadFile(f.Name())
		f.Close()
		who := strings.TrimSpace(string(holder))
		if who == "" {
			who = "another up"
		}
		return nil, fmt.Errorf("up: the state directory %s is in use by %s; stop that one first, or give this one its own --state-dir (or --ephemeral)", s.path, who)
	}
	_ = f.Truncate(0)
	_, _ = f.WriteAt([]byte(fmt.Sprintf("up pid %d, started %s\n", os.Getpid(), now.UTC().Format(time.RFC3339))), 0)
	s.lock = f
	return s, nil
}

// close releases the lock and, for an ephemeral run, removes everything.
func (s *stateDir) close() error {
	var err error
	if s.ephemeral {
		err = os.RemoveAll(s.path)
	}
	if s.lock != nil {
		s.lock.Close() // releases the flock
	}
	return err
}

// removeStaleEphemeral removes the temporary state directories in dir of
// ephemeral runs whose up is gone: their lock is free. It returns what it
// removed. A directory whose lock is held belongs to a running up.
func removeStaleEphemeral(dir string) ([]string, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, nil
		}
		return nil, err
	}
	var removed []string
	var errs []error
	for _, ent := range ents {
		if !ent.IsDir() || !strings.HasPrefix(ent.Name(), ephemeralPrefix) {
			continue
		}
		path := filepath.Join(dir, ent.Name())
		f, err := os.Open(filepath.Join(path, lockName))
		if err != nil {
			continue // not ours, or an up still creating it
		}
		free := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB) == nil
		if free {
			// Removed while locked: an up starting now cannot take it.
			if err := os.RemoveAll(path); err != nil {
				errs = append(errs, err)
			} else {
				removed = append(removed, path)
			}
		}
		f.Close()
	}
	return removed, errors.Join(errs...)
}

// agentCanReach reports, as root, why uid 1000 could not reach path: the
// first directory on the way it may not enter. The services run as that
// user from the state directory (binary, certificates, workspace).
func agentCanReach(path string) error {
	for dir := path; ; dir = filepath.Dir(dir) {
		fi, err := os.Stat(dir)
		if err != nil {
			return err
		}
		st, ok := fi.Sys().(*syscall.Stat_t)
		if ok && !traversable(fi.Mode(), st, agentID) {
			// The default is worth naming only where it was not what failed.
			alt := ""
			if def := defaultStateDir(); !within(path, def) && !within(def, dir) {
				alt = fmt.Sprintf(" (such as the default, %s)", def)
			}
			return fmt.Errorf("up: the agent's services run as uid %d and cannot enter %s (mode %04o, owner %d), on the way to the state directory %s: give a --state-dir below directories others may enter%s, or --ephemeral",
				agentID, dir, fi.Mode().Perm(), st.Uid, path, alt)
		}
		if dir == filepath.Dir(dir) {
			return nil
		}
	}
}

// within reports whether path is dir or below it.
func within(path, dir string) bool {
	rel, err := filepath.Rel(dir, path)
	return err == nil && rel != ".." && !strings.HasPrefix(rel, "../")
}

// agentID is the agent user's uid and gid: init's default.
const agentID = initconf.DefaultUID

func traversable(mode fs.FileMode, st *syscall.Stat_t, id uint32) bool {
	switch {
	case st.Uid == id:
		return mode&0o100 != 0
	case st.Gid == id:
		return mode&0o010 != 0
	default:
		return mode&0o001 != 0
	}
}
