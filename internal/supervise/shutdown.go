package supervise

import (
	"time"

	"golang.org/x/sys/unix"
)

// beginShutdown stops everything in reverse dependency order. It is
// idempotent; the loop calls stepShutdown after every event until no service
// is left running.
func (sv *supervisor) beginShutdown() {
	if sv.shuttingDown {
		return
	}
	sv.shuttingDown = true
	for _, s := range sv.services {
		if s.pid == 0 {
			s.stopTimers()
			s.gen++
			if s.state == statePending || s.state == stateBackoff {
				s.state = stateDown
			}
		}
	}
	deadline := sv.opt.ShutdownTimeout
	go func() {
		t := time.After(deadline)
		select {
		case <-t:
			sv.post(func() {
				if sv.anyRunning() {
					sv.log.initf("shutdown still not complete after %s: killing what is left", deadline)
					sv.killAll()
				}
			})
		case <-sv.quit:
		}
	}()
	sv.stepShutdown()
}

// stepShutdown sends the stop signal to every running service that no running
// service depends on.
func (sv *supervisor) stepShutdown() {
	for _, s := range sv.services {
		if s.pid == 0 || s.state == stateStopping || sv.hasRunningDependent(s) {
			continue
		}
		sv.stop(s)
	}
}

func (sv *supervisor) hasRunningDependent(s *service) bool {
	for _, other := range sv.services {
		if other.pid == 0 {
			continue
		}
		for _, d := range other.conf.DependsOn {
			if d == s.conf.Name {
				return true
			}
		}
	}
	return false
}

// stop sends a service's stop signal to its whole process group, then SIGKILL
// after its grace period.
func (sv *supervisor) stop(s *service) {
	c := s.conf
	s.state = stateStopping
	if s.cancelReady != nil {
		s.cancelReady()
		s.cancelReady = nil
	}
	sig := unix.Signal(c.StopSignal)
	sv.log.initf("stopping %s (%s to process group %d, SIGKILL in %s)", c.Name, unix.SignalName(sig), s.pid, c.StopGrace)
	_ = unix.Kill(-s.pid, sig)
	sv.after(s, c.StopGrace, func() {
		if s.pid != 0 {
			sv.log.initf("%s still running %s after %s: sending SIGKILL", c.Name, unix.SignalName(sig), c.StopGrace)
			_ = unix.Kill(-s.pid, unix.SIGKILL)
		}
	})
}
