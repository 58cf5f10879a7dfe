package up

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"time"
)

// agentProcs finds the processes of the agent that init does not own:
// shells joined with `slapenir shell`, `up -- CMD`, and everything they
// started. They are not up's children and may have left their session and
// process group (setsid, nohup, a double fork), so they are found by what
// they cannot shed:
//
//   - confined, the agent's network namespace, which uid 1000 without
//     privileges cannot leave, and that uid: a root process with one thread
//     in the namespace (ip netns exec by hand, a tool that setns'd a thread
//     to look in) is someone else's, and is left alone. withInit false leaves out init's own PID namespace
//     (its services, which init stops in order); true takes everything,
//     for the last sweep before the namespace is deleted.
//   - unconfined, the environment `slapenir shell` gives them, which names
//     this run's control socket: what inherits it is theirs. (A process
//     that clears its environment is not found: nothing confines an
//     unconfined agent.)
type agentProcs struct {
	netns    string // /run/netns/NAME, or "" when unconfined
	initPID  int
	withInit bool
	skip     int    // init's wrapper (ip netns exec … unshare): it is in the namespace, not in init's PID namespace
	marker   []byte // SLAPENIR_INIT_SOCKET=socket, when unconfined
}

func (a agentProcs) list() []int {
	var want, initNS *syscall.Stat_t
	if a.netns != "" {
		want = nsOf(a.netns)
		if want == nil {
			return nil // the namespace is gone, and with it no process is left in it
		}
		if !a.withInit {
			initNS = nsOf(fmt.Sprintf("/proc/%d/ns/pid", a.initPID))
		}
	}
	ents, _ := os.ReadDir("/proc")
	var pids []int
	for _, ent := range ents {
		pid, err := strconv.Atoi(ent.Name())
		if err != nil || pid == os.Getpid() || (pid == a.skip && !a.withInit) {
			continue
		}
		dir := filepath.Join("/proc", ent.Name())
		if want != nil {
			if !sameNS(want, nsOf(filepath.Join(dir, "ns", "net"))) {
				continue
			}
			if initNS != nil && sameNS(initNS, nsOf(filepath.Join(dir, "ns", "pid"))) {
				continue
			}
			if uid, ok := realUID(dir); !ok || uid != agentID {
				continue
			}
		} else {
			env, err := os.ReadFile(filepath.Join(dir, "environ"))
			if err != nil || !hasEnvEntry(env, a.marker) {
				continue
			}
		}
		pids = append(pids, pid)
	}
	return pids
}

// end stops them: SIGHUP (an interactive shell ignores SIGTERM, and
// passes a hangup on to its jobs) and SIGTERM, grace to go, then SIGKILL
// until none is left, what they fork meanwhile included. It returns how
// many it found first.
func (a agentProcs) end(grace time.Duration) (int, error) {
	first := a.list()
	if len(first) == 0 {
		return 0, nil
	}
	for _, pid := range first {
		_ = syscall.Kill(pid, syscall.SIGHUP)
		_ = syscall.Kill(pid, syscall.SIGTERM)
	}
	for deadline := time.Now().Add(grace); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if len(a.list()) == 0 {
			return len(first), nil
		}
	}
	var left []int
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if left = a.list(); len(left) == 0 {
			return len(first), nil
		}
		for _, pid := range left {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
	}
	return len(first), fmt.Errorf("up: processes of the agent still there after SIGKILL: %v", left)
}

func nsOf(path string) *syscall.Stat_t {
	var st syscall.Stat_t
	if syscall.Stat(path, &st) != nil {
		return nil
	}
	return &st
}

func sameNS(a, b *syscall.Stat_t) bool {
	return a != nil && b != nil && a.Dev == b.Dev && a.Ino == b.Ino
}

// hasEnvEntry reports whether the NUL-separated environment env holds the
// entry kv exactly.
func hasEnvEntry(env, kv []byte) bool {
	for len(env) > 0 {
		entry, rest, _ := bytes.Cut(env, []byte{0})
		if bytes.Equal(entry, kv) {
			return true
		}
		env = rest
	}
	return false
}

// realUID is the real uid of the process whose /proc directory is dir.
func realUID(dir string) (uint32, bool) {
	b, err := os.ReadFile(filepath.Join(dir, "status"))
	if err != nil {
		return 0, false
	}
	for _, line := range bytes.Split(b, []byte{'\n'}) {
		if rest, ok := bytes.CutPrefix(line, []byte("Uid:")); ok {
			f := bytes.Fields(rest)
			if len(f) == 0 {
				return 0, false
			}
			uid, err := strconv.ParseUint(string(f[0]), 10, 32)
			return uint32(uid), err == nil
		}
	}
	return 0, false
}
