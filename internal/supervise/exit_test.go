package supervise

import (
	"strings"
	"testing"

	"github.com/slapenir/slapenir/internal/initconf"
	"golang.org/x/sys/unix"
)

// ctl stop answers "web stopped" only once init's log says so: a user who
// reads the answer and then the log finds the line there.
func TestCtlStopIsAnsweredAfterTheStoppedLine(t *testing.T) {
	var log strings.Builder
	sv := &supervisor{log: &logStream{w: &log}}
	var logAtAnswer string
	s := &service{
		conf: &initconf.Service{Name: "web", Kind: initconf.Longrun}, state: stateStopping,
		pid: 10, gen: 1, held: true,
		whenDown: []func(){func() { logAtAnswer = log.String() }},
	}
	sv.onExit(s, 1, signaled(unix.SIGTERM))
	if want := "[init] web stopped (killed by signal SIGTERM)\n"; logAtAnswer != want {
		t.Errorf("when ctl stop was answered the log held %q, want %q", logAtAnswer, want)
	}
	if s.state != stateDown || s.whenDown != nil {
		t.Errorf("after the exit: state %s, %d answers still waiting; want down and none", s.state, len(s.whenDown))
	}
}
