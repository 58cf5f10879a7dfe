package supervise

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"github.com/slapenir/slapenir/internal/initconf"
	"golang.org/x/sys/unix"
)

// process is what spawn needs to start one command as a service's user.
type process struct {
	argv   []string
	env    []string
	dir    string
	id     *identity
	netAdm bool
	files  []*os.File // 0, 1, 2, then fds from 3; nil entries are closed
}

// errNotFound marks a command that is not in the service's PATH (exit 127,
// as a shell would say).
type errNotFound struct{ error }

// spawn starts p as its user, in its own process group so that stop signals
// reach everything the service started, from the spawner thread whose
// no_new_privs and bounding set the child inherits.
func (sv *supervisor) spawn(p process) (int, <-chan unix.WaitStatus, error) {
	path, err := lookPath(p.argv[0], p.env)
	if err != nil {
		return 0, nil, errNotFound{err}
	}
	fds := make([]uintptr, len(p.files))
	for i, f := range p.files {
		fds[i] = ^uintptr(0)
		if f != nil {
			fds[i] = f.Fd()
		}
	}
	sys := &syscall.SysProcAttr{Setpgid: true}
	if p.id != nil {
		sys.Credential = &syscall.Credential{Uid: p.id.uid, Gid: p.id.gid, Groups: p.id.groups}
		if p.netAdm && p.id.uid != 0 {
			// Ambient, so that a non-root user keeps it across execve.
			sys.AmbientCaps = []uintptr{unix.CAP_NET_ADMIN}
		}
	}
	sp := sv.plain
	if p.netAdm {
		sp = sv.netAdmin
	}
	pid, ch, err := sp.start(path, p.argv, &syscall.ProcAttr{Dir: p.dir, Env: p.env, Files: fds, Sys: sys})
	if err != nil {
		who := "init's user"
		if p.id != nil {
			who = fmt.Sprintf("uid %d gid %d", p.id.uid, p.id.gid)
		}
		dir := p.dir
		if dir == "" {
			dir = "/"
		}
		return 0, nil, fmt.Errorf("cannot execute %s as %s in workdir %s: %w", path, who, dir, err)
	}
	return pid, ch, nil
}

// serviceEnv is the container's environment, then what earlier oneshots
// exported, then the user's identity, then the service's own additions.
func (sv *supervisor) serviceEnv(s *service) []string {
	var who []string
	if s.id != nil {
		// Never root's HOME for another user, even one without a passwd entry.
		who = []string{"HOME=" + s.id.home}
		if s.id.name != "" {
			who = append(who, "USER="+s.id.name, "LOGNAME="+s.id.name)
		}
	}
	return mergeEnv(sv.opt.Env, sv.exports, who, s.conf.Env, []string{"SLAPENIR_SERVICE=" + s.conf.Name})
}

// start launches one run of s. What cannot even be started goes through
// cannotStart, so the restart policy applies to it as to any exit.
func (sv *supervisor) start(s *service) {
	s.gen++
	s.timedOut, s.startFailed = false, false
	c := s.conf
	env := sv.serviceEnv(s)
	// ours are init's ends of the pipes, theirs the child's (closed here once
	// it has them); on any failure both go.
	var ours, theirs []*os.File
	fail := func(err error) {
		for _, f := range append(ours, theirs...) {
			if f != nil {
				f.Close()
			}
		}
		sv.cannotStart(s, err)
	}
	devnull, err := os.Open(os.DevNull)
	if err != nil {
		fail(err)
		return
	}
	theirs = append(theirs, devnull)
	for range 2 { // stdout, stderr
		r, w, err := os.Pipe()
		if err != nil {
			fail(err)
			return
		}
		ours, theirs = append(ours, r), append(theirs, w)
	}
	var notifyR *os.File
	if c.Ready != nil && c.Ready.NotifyFD > 0 {
		r, w, err := os.Pipe()
		if err != nil {
			fail(err)
			return
		}
		notifyR = r
		ours = append(ours, r)
		for len(theirs) < c.Ready.NotifyFD {
			theirs = append(theirs, nil)
		}
		theirs = append(theirs, w)
		env = append(env, "SLAPENIR_NOTIFY_FD="+strconv.Itoa(c.Ready.NotifyFD))
	}
	if c.Kind == initconf.Oneshot {
		if err := sv.prepareExport(s); err != nil {
			fail(err)
			return
		}
		env = append(env, "SLAPENIR_EXPORT="+s.exportPath)
	}
	pid, waitCh, err := sv.spawn(process{
		argv: c.Command, env: env, dir: c.Dir, id: s.id, netAdm: c.Privileged, files: theirs,
	})
	if err != nil {
		fail(err)
		return
	}
	for _, f := range theirs {
		if f != nil {
			f.Close()
		}
	}
	outR, errR := ours[0], ours[1]
	s.pid, s.started = pid, time.Now()
	sv.log.initf("%s started pid=%d", c.Name, pid)
	pumped := make(chan struct{}, 2)
	for _, r := range []*os.File{outR, errR} {
		go func() {
			sv.log.pump(c.Name, r)
			r.Close()
			pumped <- struct{}{}
		}()
	}
	gen := s.gen
	go func() {
		ws := <-waitCh
		// Let the last lines come out before the exit line; but a process the
		// service left behind may hold the pipes open, so do not wait long.
		grace := time.NewTimer(50 * time.Millisecond)
		defer grace.Stop()
		for n := 0; n < 2; {
			select {
			case <-pumped:
				n++
			case <-grace.C:
				n = 2
			}
		}
		sv.post(func() { sv.onExit(s, gen, ws) })
	}()

	switch {
	case c.Kind == initconf.Oneshot:
		s.state = stateStarting
		if c.Timeout > 0 {
			sv.after(s, c.Timeout, func() {
				sv.log.initf("%s still running after its timeout of %s: killing it", c.Name, c.Timeout)
				s.timedOut = true
				_ = unix.Kill(-s.pid, unix.SIGKILL)
			})
		}
	case c.Ready != nil:
		s.state = stateStarting
		sv.watchReady(s, env, notifyR)
	default:
		s.state = stateUp
	}
	for _, fn := range s.whenStarted {
		fn()
	}
	s.whenStarted = nil
}

// cannotStart reports a command that could not even be started as exit 126
// (127 when not found). That is a crash, never a fatal 100+ exit: a longrun is
// retried with backoff, a required oneshot stops the container with that code.
func (sv *supervisor) cannotStart(s *service, err error) {
	sv.log.initf("%s cannot start: %v", s.conf.Name, err)
	code := 126
	if errors.As(err, new(errNotFound)) {
		code = 127
	}
	gen := s.gen
	s.started = time.Now()
	s.startFailed = true
	s.state = stateStarting // not pending, or startEligible would retry at once
	sv.queue(func() { sv.onExit(s, gen, unix.WaitStatus(code<<8)) })
}

// prepareExport creates the file a oneshot may write KEY=VALUE lines to,
// owned by the oneshot's user.
func (sv *supervisor) prepareExport(s *service) error {
	s.exportPath = filepath.Join(sv.tmpDir, s.conf.Name+".env")
	f, err := os.OpenFile(s.exportPath, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
	if err != nil {
		return fmt.Errorf("create export file: %w", err)
	}
	defer f.Close()
	if s.id != nil {
		if err := f.Chown(int(s.id.uid), int(s.id.gid)); err != nil {
			return fmt.Errorf("give export file %s to uid %d: %w", s.exportPath, s.id.uid, err)
		}
	}
	return nil
}
