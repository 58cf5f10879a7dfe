package supervise

import (
	"errors"
	"os"
	"os/signal"
	"sync"
	"syscall"

	"golang.org/x/sys/unix"
)

// reaper is the only caller of wait4 in the process. Children started through
// it get their exit status on a channel; any other child that ends up ours
// (an orphaned grandchild re-parented to PID 1 or to a subreaper) is reaped
// and reported through onOrphan.
type reaper struct {
	// mu is held across fork and registration so a child that exits at once
	// is never mistaken for an orphan.
	mu       sync.Mutex
	waiters  map[int]chan unix.WaitStatus
	onOrphan func(pid int, ws unix.WaitStatus)
	sigchld  chan os.Signal
	done     chan struct{}
}

func newReaper(onOrphan func(int, unix.WaitStatus)) *reaper {
	r := &reaper{
		waiters:  map[int]chan unix.WaitStatus{},
		onOrphan: onOrphan,
		sigchld:  make(chan os.Signal, 1),
		done:     make(chan struct{}),
	}
	signal.Notify(r.sigchld, syscall.SIGCHLD)
	go r.loop()
	return r
}

// start forks and execs argv0 and returns the pid and a channel that receives
// its exit status exactly once.
func (r *reaper) start(argv0 string, argv []string, attr *syscall.ProcAttr) (int, <-chan unix.WaitStatus, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	pid, err := syscall.ForkExec(argv0, argv, attr)
	if err != nil {
		return 0, nil, err
	}
	ch := make(chan unix.WaitStatus, 1)
	r.waiters[pid] = ch
	return pid, ch, nil
}

func (r *reaper) loop() {
	for {
		select {
		case <-r.sigchld:
			r.reapAll()
		case <-r.done:
			return
		}
	}
}

type reaped struct {
	pid int
	ws  unix.WaitStatus
}

// reapAll collects every exited child. SIGCHLDs coalesce, so one signal may
// stand for many exits: loop until wait4 has nothing more.
func (r *reaper) reapAll() {
	var orphans []reaped
	r.mu.Lock()
	for {
		var ws unix.WaitStatus
		pid, err := unix.Wait4(-1, &ws, unix.WNOHANG, nil)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil || pid <= 0 {
			break
		}
		if ch, ok := r.waiters[pid]; ok {
			delete(r.waiters, pid)
			ch <- ws
		} else {
			orphans = append(orphans, reaped{pid, ws})
		}
	}
	r.mu.Unlock()
	for _, o := range orphans {
		r.onOrphan(o.pid, o.ws)
	}
}

func (r *reaper) stop() {
	signal.Stop(r.sigchld)
	close(r.done)
}
