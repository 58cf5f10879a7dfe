package supervise

import (
	"time"

	"github.com/slapenir/slapenir/internal/initconf"
	"golang.org/x/sys/unix"
)

// action is what the restart policy decides after a long-running service exits.
type action int

const (
	actStayDown action = iota
	actRestart
	actFatal
)

// decide applies a service's restart policy to how its process ended.
func decide(mode initconf.RestartMode, ws unix.WaitStatus) action {
	if ws.Exited() && ws.ExitStatus() >= 100 {
		return actFatal
	}
	switch mode {
	case initconf.RestartNever:
		return actStayDown
	case initconf.RestartAlways:
		return actRestart
	}
	if ws.Exited() {
		if ws.ExitStatus() == 0 {
			return actStayDown
		}
		return actRestart
	}
	// Stopped on purpose (docker stop, Ctrl-C, ctl) is a clean stop; killed by
	// anything else (kill -9, a segfault, the OOM killer) is a crash.
	if sig := ws.Signal(); sig == unix.SIGTERM || sig == unix.SIGINT {
		return actStayDown
	}
	return actRestart
}

// restartDelay is the wait before restart number n of a crash loop (n counts
// crashes since the last stable run, from 1). The first restart is immediate,
// so a one-off crash costs nothing; after that the delay doubles from
// BackoffStart up to BackoffMax.
func restartDelay(r initconf.Restart, n int) time.Duration {
	if n <= 1 {
		return 0
	}
	d := r.BackoffStart
	for i := 2; i < n; i++ {
		d *= 2
		if d >= r.BackoffMax || d <= 0 {
			return r.BackoffMax
		}
	}
	return min(d, r.BackoffMax)
}

// describeExit says how a process ended, in the words of the log lines.
func describeExit(ws unix.WaitStatus) string {
	if ws.Exited() {
		return "exited code=" + itoa(ws.ExitStatus())
	}
	if ws.Signaled() {
		return "killed by signal " + unix.SignalName(ws.Signal())
	}
	return "ended (status " + itoa(int(ws)) + ")"
}

// exitCode is the conventional shell exit code of a status: the code, or 128
// plus the signal number.
func exitCode(ws unix.WaitStatus) int {
	if ws.Exited() {
		return ws.ExitStatus()
	}
	if ws.Signaled() {
		return 128 + int(ws.Signal())
	}
	return 1
}
