package supervise

import (
	"testing"
	"time"

	"github.com/slapenir/slapenir/internal/initconf"
	"golang.org/x/sys/unix"
)

func exited(code int) unix.WaitStatus          { return unix.WaitStatus(code << 8) }
func signaled(sig unix.Signal) unix.WaitStatus { return unix.WaitStatus(sig) }

func TestDecideFollowsTheSeedsExitCodes(t *testing.T) {
	for _, tc := range []struct {
		mode initconf.RestartMode
		ws   unix.WaitStatus
		want action
	}{
		{initconf.RestartSeed, exited(0), actStayDown},
		{initconf.RestartSeed, exited(1), actRestart},
		{initconf.RestartSeed, exited(42), actRestart},
		{initconf.RestartSeed, exited(99), actRestart},
		{initconf.RestartSeed, exited(100), actFatal},
		{initconf.RestartSeed, exited(255), actFatal},
		{initconf.RestartSeed, signaled(unix.SIGTERM), actStayDown},
		{initconf.RestartSeed, signaled(unix.SIGINT), actStayDown},
		{initconf.RestartSeed, signaled(unix.SIGKILL), actRestart},
		{initconf.RestartSeed, signaled(unix.SIGSEGV), actRestart},
		{initconf.RestartAlways, exited(0), actRestart},
		{initconf.RestartAlways, signaled(unix.SIGTERM), actRestart},
		{initconf.RestartAlways, exited(100), actFatal},
		{initconf.RestartNever, exited(1), actStayDown},
		{initconf.RestartNever, signaled(unix.SIGKILL), actStayDown},
		{initconf.RestartNever, exited(101), actFatal},
	} {
		if got := decide(tc.mode, tc.ws); got != tc.want {
			t.Errorf("decide(%s, %s) = %d, want %d", tc.mode, describeExit(tc.ws), got, tc.want)
		}
	}
}

func TestRestartDelayBacksOffToACap(t *testing.T) {
	r := initconf.Restart{BackoffStart: 100 * time.Millisecond, BackoffMax: time.Second}
	want := []time.Duration{0, 0, 100 * time.Millisecond, 200 * time.Millisecond, 400 * time.Millisecond, 800 * time.Millisecond, time.Second, time.Second}
	for n, w := range want {
		if got := restartDelay(r, n); got != w {
			t.Errorf("restartDelay(n=%d) = %s, want %s", n, got, w)
		}
	}
	if got := restartDelay(r, 1000); got != time.Second {
		t.Errorf("restartDelay(n=1000) = %s, want the cap", got)
	}
}

func TestExitCodeAndDescription(t *testing.T) {
	if exitCode(exited(42)) != 42 || exitCode(signaled(unix.SIGKILL)) != 137 {
		t.Errorf("exitCode: got %d and %d, want 42 and 137", exitCode(exited(42)), exitCode(signaled(unix.SIGKILL)))
	}
	if d := describeExit(signaled(unix.SIGKILL)); d != "killed by signal SIGKILL" {
		t.Errorf("describeExit = %q", d)
	}
}
