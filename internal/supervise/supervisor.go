package supervise

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/slapenir/slapenir/internal/initconf"
	"golang.org/x/sys/unix"
)

// Options configure Run. The zero value of each field has a usable default.
type Options struct {
	// Stdout receives every service's prefixed lines and init's own events.
	Stdout io.Writer
	// Socket is the control socket's path ("" disables it).
	Socket string
	// SocketGroup owns the socket (mode 0660), so its members may use ctl.
	SocketGroup string
	// Env is the container environment every service starts from.
	Env []string
	// ShutdownTimeout bounds a whole shutdown; what still runs then is
	// killed. The default leaves a second of Docker's 10.
	ShutdownTimeout time.Duration
}

// state of one service, as `ctl status` shows it.
type state string

const (
	statePending  state = "pending"  // waiting for its dependencies
	stateStarting state = "starting" // running, not yet ready
	stateUp       state = "up"       // running and ready
	stateDone     state = "done"     // oneshot that exited 0
	stateFailed   state = "failed"   // optional oneshot that failed
	stateBackoff  state = "backoff"  // waiting to be restarted
	stateStopping state = "stopping" // stop signal sent
	stateDown     state = "down"     // not running and not coming back by itself
)

type service struct {
	conf *initconf.Service
	id   *identity // nil: run as init's own user

	state        state
	pid          int
	gen          int // bumped on each start, to drop events of an earlier run
	started      time.Time
	quickCrashes int
	restarts     int
	lastExit     string
	exportPath   string
	timedOut     bool
	startFailed  bool // the last run never started: see cannotStart

	held             bool // stopped through ctl: no automatic (re)start
	restartAfterStop bool
	whenDown         []func() // ctl replies waiting for the process to end
	whenStarted      []func()

	cancelReady context.CancelFunc
	timers      []*time.Timer
}

type supervisor struct {
	opt      Options
	log      *logStream
	reap     *reaper
	plain    *spawner // children get no capabilities
	netAdmin *spawner // children may keep CAP_NET_ADMIN
	services []*service
	byName   map[string]*service
	exports  []string // KEY=VALUE exported by finished oneshots
	tmpDir   string

	events chan func()
	// queued are events the loop raised itself (a service that could not
	// start): run before the loop waits again, never posted to events, whose
	// buffer the loop alone empties — posting to it from the loop deadlocked
	// init with more than 64 services that could not start.
	queued []func()
	quit   chan struct{}

	shuttingDown bool
	exitCode     int
}

// Run supervises the services of f until they are all stopped, and returns
// init's exit code: 0 after a requested shutdown, the fatal code of a service
// that exited 100+, the code of a failed required oneshot, or 2 when the
// services cannot be set up at all.
func Run(f *initconf.File, opt Options) int {
	if opt.Stdout == nil {
		opt.Stdout = os.Stdout
	}
	if opt.ShutdownTimeout == 0 {
		opt.ShutdownTimeout = 9 * time.Second
	}
	sv := &supervisor{
		opt:    opt,
		log:    &logStream{w: opt.Stdout},
		byName: map[string]*service{},
		events: make(chan func(), 64),
		quit:   make(chan struct{}),
	}
	if err := sv.prepare(f); err != nil {
		sv.log.initf("%v", err)
		return 2
	}
	defer os.RemoveAll(sv.tmpDir)

	if os.Getpid() != 1 {
		// Orphans of our services must come to us, not to the host's init,
		// so the same code behaves on a workstation as in a container.
		if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
			sv.log.initf("cannot become a child subreaper (%v): orphans will not be reaped by init", err)
		}
	}
	sv.reap = newReaper(func(pid int, ws unix.WaitStatus) {
		sv.log.initf("reaped orphan pid=%d (%s)", pid, describeExit(ws))
	})
	defer sv.reap.stop()
	var err error
	if sv.plain, err = newSpawner(sv.reap, false); err == nil {
		sv.netAdmin, err = newSpawner(sv.reap, true)
	}
	if err != nil {
		sv.log.initf("cannot prepare the thread that starts services: %v", err)
		return 2
	}

	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP)
	defer signal.Stop(sigs)

	if opt.Socket != "" {
		ln, warn, err := listenControl(opt.Socket, opt.SocketGroup)
		if err != nil {
			sv.log.initf("%v", err)
			return 2
		}
		if warn != "" {
			sv.log.initf("%s", warn)
		}
		defer ln.Close()
		go sv.serveControl(ln)
	}
	sv.log.initf("starting %d services from %s (pid %d)", len(sv.services), f.Path, os.Getpid())
	return sv.loop(sigs)
}

// prepare resolves every service's user up front, so a missing user stops
// init at once with a message naming the service, before anything runs.
func (sv *supervisor) prepare(f *initconf.File) error {
	root := os.Geteuid() == 0
	var errs []error
	for _, c := range f.Services {
		s := &service{conf: c, state: statePending}
		if root {
			id, err := resolveIdentity(c)
			if err != nil {
				errs = append(errs, err)
			}
			if id.note != "" {
				sv.log.initf("%s", id.note)
			}
			s.id = &id
		}
		sv.services = append(sv.services, s)
		sv.byName[c.Name] = s
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	if !root {
		sv.log.initf("not running as root: every service runs as uid %d, user/group settings and privilege drops are skipped", os.Geteuid())
	}
	dir, err := os.MkdirTemp("", "slapenir-init-")
	if err != nil {
		return fmt.Errorf("cannot create a directory for oneshot exports: %w (is $TMPDIR writable?)", err)
	}
	// Services write their export files here as their own users.
	if err := os.Chmod(dir, 0o711); err != nil {
		return fmt.Errorf("cannot set the mode of %s: %w", dir, err)
	}
	sv.tmpDir = dir
	return nil
}

// loop is the only goroutine that touches service state; everything else
// (exits, timers, readiness probes, ctl requests) posts a closure to it.
func (sv *supervisor) loop(sigs <-chan os.Signal) int {
	defer close(sv.quit)
	sv.startEligible()
	for {
		if sv.shuttingDown {
			sv.stepShutdown()
			if !sv.anyRunning() {
				sv.log.initf("all services stopped, exiting with code %d", sv.exitCode)
				return sv.exitCode
			}
		}
		if len(sv.queued) > 0 {
			fn := sv.queued[0]
			sv.queued = sv.queued[1:]
			fn()
			sv.startEligible()
			continue
		}
		select {
		case fn := <-sv.events:
			fn()
		case sig := <-sigs:
			sv.onSignal(sig.(syscall.Signal))
		}
		sv.startEligible()
	}
}

// queue runs fn on the loop after the current event: for the loop's own
// use, where post would wait on the loop itself.
func (sv *supervisor) queue(fn func()) { sv.queued = append(sv.queued, fn) }

// post runs fn on the loop goroutine; after the loop has ended it is dropped.
func (sv *supervisor) post(fn func()) {
	select {
	case sv.events <- fn:
	case <-sv.quit:
	}
}

// after runs fn on the loop after d, unless the service has been started or
// stopped again since (gen changed) — a stale timer then does nothing.
func (sv *supervisor) after(s *service, d time.Duration, fn func()) {
	gen := s.gen
	t := time.AfterFunc(d, func() {
		sv.post(func() {
			if s.gen == gen {
				fn()
			}
		})
	})
	s.timers = append(s.timers, t)
}

func (s *service) stopTimers() {
	for _, t := range s.timers {
		t.Stop()
	}
	s.timers = nil
	if s.cancelReady != nil {
		s.cancelReady()
		s.cancelReady = nil
	}
}

func (sv *supervisor) onSignal(sig syscall.Signal) {
	switch sig {
	case syscall.SIGHUP:
		for _, s := range sv.services {
			if s.conf.ForwardHUP && s.pid != 0 {
				sv.log.initf("passing SIGHUP to %s", s.conf.Name)
				_ = unix.Kill(s.pid, unix.SIGHUP)
			}
		}
	default:
		if sv.shuttingDown {
			sv.log.initf("received %s again during shutdown: killing every service now", unix.SignalName(sig))
			sv.killAll()
			return
		}
		sv.log.initf("received %s: stopping all services", unix.SignalName(sig))
		sv.beginShutdown()
	}
}

// depsSatisfied says whether s may start: each dependency is ready, done, or
// an optional oneshot that failed.
func (sv *supervisor) depsSatisfied(s *service) bool {
	for _, d := range s.conf.DependsOn {
		dep := sv.byName[d]
		switch dep.state {
		case stateUp, stateDone:
		case stateFailed:
			if dep.conf.Required {
				return false
			}
		default:
			return false
		}
	}
	return true
}

func (sv *supervisor) startEligible() {
	if sv.shuttingDown {
		return
	}
	for _, s := range sv.services {
		if s.state == statePending && !s.held && sv.depsSatisfied(s) {
			sv.start(s)
		}
	}
}

func (sv *supervisor) anyRunning() bool {
	for _, s := range sv.services {
		if s.pid != 0 {
			return true
		}
	}
	return false
}

func (sv *supervisor) killAll() {
	for _, s := range sv.services {
		if s.pid != 0 {
			_ = unix.Kill(-s.pid, unix.SIGKILL)
		}
	}
}
