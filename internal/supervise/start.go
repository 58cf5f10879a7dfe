package supervise

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
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

// spawn starts p through the exec wrapper, in its own process group so that
// stop signals reach everything the service started.
func (sv *supervisor) spawn(p process) (int, <-chan unix.WaitStatus, error) {
	argv := []string{sv.opt.Self, "init", ExecServiceFlag}
	if p.id != nil {
		groups := make([]string, len(p.id.groups))
		for i, g := range p.id.groups {
			groups[i] = strconv.FormatUint(uint64(g), 10)
		}
		argv = append(argv, "--uid", strconv.FormatUint(uint64(p.id.uid), 10),
			"--gid", strconv.FormatUint(uint64(p.id.gid), 10), "--groups", strings.Join(groups, ","))
	}
	if p.netAdm {
		argv = append(argv, "--net-admin")
	}
	if p.dir != "" {
		argv = append(argv, "--dir", p.dir)
	}
	argv = append(append(argv, "--"), p.argv...)
	fds := make([]uintptr, len(p.files))
	for i, f := range p.files {
		fds[i] = ^uintptr(0)
		if f != nil {
			fds[i] = f.Fd()
		}
	}
	return sv.reap.start(sv.opt.Self, argv, &syscall.ProcAttr{
		Env:   p.env,
		Files: fds,
		Sys:   &syscall.SysProcAttr{Setpgid: true},
	})
}

// serviceEnv is the container's environment, then what earlier oneshots
// exported, then the user's identity, then the service's own additions.
func (sv *supervisor) serviceEnv(s *service) []string {
	var who []string
	if s.id != nil && s.id.name != "" {
		who = []string{"HOME=" + s.id.home, "USER=" + s.id.name, "LOGNAME=" + s.id.name}
	}
	return mergeEnv(sv.opt.Env, sv.exports, who, s.conf.Env, []string{"SLAPENIR_SERVICE=" + s.conf.Name})
}

// start launches one run of s. A failure to even fork is handled like the
// command exiting 126, so the restart policy applies to it as to any exit.
func (sv *supervisor) start(s *service) {
	s.gen++
	s.timedOut = false
	c := s.conf
	env := sv.serviceEnv(s)
	devnull, err := os.Open(os.DevNull)
	if err != nil {
		sv.cannotStart(s, fmt.Errorf("open %s: %w", os.DevNull, err))
		return
	}
	defer devnull.Close()
	outR, outW, err := os.Pipe()
	if err != nil {
		sv.cannotStart(s, err)
		return
	}
	errR, errW, err := os.Pipe()
	if err != nil {
		outR.Close()
		outW.Close()
		sv.cannotStart(s, err)
		return
	}
	files := []*os.File{devnull, outW, errW}
	var notifyR *os.File
	if c.Ready != nil && c.Ready.NotifyFD > 0 {
		r, w, err := os.Pipe()
		if err != nil {
			sv.cannotStart(s, err)
			return
		}
		notifyR = r
		for len(files) < c.Ready.NotifyFD {
			files = append(files, nil)
		}
		files = append(files, w)
		env = append(env, "SLAPENIR_NOTIFY_FD="+strconv.Itoa(c.Ready.NotifyFD))
	}
	if c.Kind == initconf.Oneshot {
		if err := sv.prepareExport(s); err != nil {
			sv.cannotStart(s, err)
			return
		}
		env = append(env, "SLAPENIR_EXPORT="+s.exportPath)
	}
	pid, waitCh, err := sv.spawn(process{
		argv: c.Command, env: env, dir: c.Dir, id: s.id, netAdm: c.Privileged, files: files,
	})
	for _, f := range files[1:] {
		if f != nil {
			f.Close()
		}
	}
	if err != nil {
		outR.Close()
		errR.Close()
		if notifyR != nil {
			notifyR.Close()
		}
		sv.cannotStart(s, err)
		return
	}
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

func (sv *supervisor) cannotStart(s *service, err error) {
	sv.log.initf("%s cannot start: %v", s.conf.Name, err)
	gen := s.gen
	s.started = time.Now()
	sv.post(func() { sv.onExit(s, gen, unix.WaitStatus(126<<8)) })
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
