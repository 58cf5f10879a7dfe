package supervise

import (
	"time"

	"github.com/slapenir/slapenir/internal/initconf"
	"golang.org/x/sys/unix"
)

// onExit applies the policy to one ended run of s.
func (sv *supervisor) onExit(s *service, gen int, ws unix.WaitStatus) {
	if gen != s.gen {
		return
	}
	c := s.conf
	s.pid = 0
	s.gen++ // invalidates this run's timers and readiness result
	s.stopTimers()
	how := describeExit(ws)
	s.lastExit = how
	// ctl stop's answer goes out after the "stopped" line: whoever reads
	// "web stopped" from ctl finds it in init's log too.
	defer func(waiting []func()) {
		for _, fn := range waiting {
			fn()
		}
	}(s.whenDown)
	s.whenDown = nil

	switch {
	case sv.shuttingDown:
		s.state = stateDown
		sv.log.initf("%s stopped (%s)", c.Name, how)
	case s.held:
		s.state = stateDown
		sv.log.initf("%s stopped (%s)", c.Name, how)
		if s.restartAfterStop {
			s.held, s.restartAfterStop = false, false
			s.quickCrashes = 0
			sv.start(s)
		}
	case c.Kind == initconf.Oneshot:
		sv.oneshotEnded(s, ws, how)
	default:
		sv.longrunEnded(s, ws, how)
	}
}

func (sv *supervisor) oneshotEnded(s *service, ws unix.WaitStatus, how string) {
	c := s.conf
	if ws.Exited() && ws.ExitStatus() == 0 {
		s.state = stateDone
		n := sv.readExports(s)
		sv.log.initf("%s %s, done (exported %d variables)", c.Name, how, n)
		return
	}
	code := exitCode(ws)
	if s.timedOut {
		code, how = 124, how+" after its timeout of "+c.Timeout.String()
	}
	switch {
	case ws.Exited() && ws.ExitStatus() >= 100 && !s.startFailed:
		sv.fatal(s, how, code)
	case c.Required:
		sv.log.initf("%s %s: required oneshot failed, stopping all services", c.Name, how)
		sv.exitCode = code
		sv.beginShutdown()
	default:
		s.state = stateFailed
		sv.log.initf("%s %s: optional oneshot failed, continuing", c.Name, how)
	}
}

func (sv *supervisor) longrunEnded(s *service, ws unix.WaitStatus, how string) {
	c := s.conf
	act := decide(c.Restart.Mode, ws)
	if s.startFailed && act == actFatal {
		act = actRestart
	}
	switch act {
	case actFatal:
		sv.fatal(s, how, exitCode(ws))
	case actStayDown:
		s.state = stateDown
		sv.log.initf("%s %s, not restarting", c.Name, how)
	case actRestart:
		if time.Since(s.started) >= c.Restart.ResetAfter {
			s.quickCrashes = 0
		}
		s.quickCrashes++
		s.restarts++
		delay := restartDelay(c.Restart, s.quickCrashes)
		sv.log.initf("%s %s, restarting in %s", c.Name, how, delay)
		if delay == 0 {
			sv.start(s)
			return
		}
		s.state = stateBackoff
		sv.after(s, delay, func() {
			if s.state == stateBackoff && !sv.shuttingDown {
				sv.start(s)
			}
		})
	}
}

// fatal: a service exited 100+, so the container stops with that code.
func (sv *supervisor) fatal(s *service, how string, code int) {
	s.state = stateDown
	sv.log.initf("%s %s: fatal (100 or more), stopping all services", s.conf.Name, how)
	sv.exitCode = code
	sv.beginShutdown()
}
