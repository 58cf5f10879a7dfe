package supervise

import (
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// spawner is a goroutine locked to its own OS thread, whose thread carries
// no_new_privs and a reduced capability bounding set. A child inherits both
// from the thread that forks it, so every service forked here starts with
// them, without an extra exec of a wrapper in between (the process-wide way,
// AllThreadsSyscall, is unavailable in a cgo binary).
type spawner struct {
	reqs chan spawnReq
}

type spawnReq struct {
	argv0 string
	argv  []string
	attr  *syscall.ProcAttr
	reply chan spawnResult
}

type spawnResult struct {
	pid  int
	wait <-chan unix.WaitStatus
	err  error
}

// newSpawner starts a spawner whose children can hold CAP_NET_ADMIN at most
// (keepNetAdmin) or no capability at all.
func newSpawner(r *reaper, keepNetAdmin bool) (*spawner, error) {
	s := &spawner{reqs: make(chan spawnReq)}
	ready := make(chan error, 1)
	go func() {
		// Never unlocked: the thread's credentials differ from the others',
		// so it must not run other goroutines, and dies with this one.
		runtime.LockOSThread()
		if err := restrictThread(keepNetAdmin); err != nil {
			ready <- err
			return
		}
		ready <- nil
		for req := range s.reqs {
			pid, ch, err := r.start(req.argv0, req.argv, req.attr)
			req.reply <- spawnResult{pid, ch, err}
		}
	}()
	if err := <-ready; err != nil {
		return nil, err
	}
	return s, nil
}

func (s *spawner) start(argv0 string, argv []string, attr *syscall.ProcAttr) (int, <-chan unix.WaitStatus, error) {
	reply := make(chan spawnResult, 1)
	s.reqs <- spawnReq{argv0, argv, attr, reply}
	res := <-reply
	return res.pid, res.wait, res.err
}

// restrictThread sets no_new_privs on the calling thread and, as root, drops
// from its bounding set every capability but (optionally) CAP_NET_ADMIN. The
// thread keeps its own effective capabilities, which the forked child needs to
// switch user; what the service may hold after execve is capped by the set.
func restrictThread(keepNetAdmin bool) error {
	if os.Geteuid() == 0 {
		last := lastCap()
		for c := 0; c <= last; c++ {
			if keepNetAdmin && c == unix.CAP_NET_ADMIN {
				continue
			}
			if err := unix.Prctl(unix.PR_CAPBSET_DROP, uintptr(c), 0, 0, 0); err != nil && err != unix.EINVAL {
				return fmt.Errorf("cannot drop capability %d from the bounding set: %w", c, err)
			}
		}
	}
	if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
		return fmt.Errorf("cannot set no_new_privs: %w", err)
	}
	return nil
}

// lastCap is the highest capability the running kernel knows.
func lastCap() int {
	b, err := os.ReadFile("/proc/sys/kernel/cap_last_cap")
	if err != nil {
		return 63
	}
	n, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		return 63
	}
	return n
}

// lookPath finds a command in the service's PATH (not init's).
func lookPath(file string, env []string) (string, error) {
	if strings.Contains(file, "/") {
		return file, executable(file)
	}
	path := "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
	for _, kv := range env {
		if v, ok := strings.CutPrefix(kv, "PATH="); ok {
			path = v
		}
	}
	for _, dir := range strings.Split(path, ":") {
		if dir == "" {
			dir = "."
		}
		p := dir + "/" + file
		if executable(p) == nil {
			return p, nil
		}
	}
	return "", fmt.Errorf("command %q not found in PATH=%q: install it or give its absolute path", file, path)
}

func executable(p string) error {
	fi, err := os.Stat(p)
	if err != nil {
		return err
	}
	if fi.IsDir() || fi.Mode()&0o111 == 0 {
		return fmt.Errorf("%s is not an executable file", p)
	}
	return nil
}
