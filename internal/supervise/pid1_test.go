package supervise_test

import (
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestOrphanedGrandchildIsReaped(t *testing.T) {
	r := startInit(t, `
services:
  parent:
    user: "65534"
    command: [sh, -c, 'sh -c "sleep 0.2 & echo grandchild=\$!"; echo middle gone; exec sleep 1000']
`)
	out := r.waitFor("grandchild=")
	pid := field(t, out, "grandchild=")
	r.waitFor("[init] reaped orphan pid=" + pid + " (exited code=0)")
	r.signal(syscall.SIGTERM)
	if code := r.wait(); code != 0 {
		t.Errorf("init exited %d after SIGTERM, want 0", code)
	}
}

func TestSubreaperOutsideAPIDNamespace(t *testing.T) {
	r := startInitAs(t, false, `
services:
  parent:
    user: "65534"
    command: [sh, -c, 'sh -c "sleep 0.2 & echo grandchild=\$!"; exec sleep 1000']
`)
	out := r.waitFor("grandchild=")
	r.waitFor("[init] reaped orphan pid=" + field(t, out, "grandchild=") + " (exited code=0)")
	r.signal(syscall.SIGTERM)
	if code := r.wait(); code != 0 {
		t.Errorf("init exited %d after SIGTERM, want 0", code)
	}
}

func TestKillNineRestarts(t *testing.T) {
	r := startInit(t, `
services:
  victim:
    user: "65534"
    command: [sh, -c, 'echo pid=$$; exec sleep 1000']
`)
	out := r.waitFor("[victim] pid=")
	nsPID, _ := strconv.Atoi(field(t, out, "[victim] pid="))
	if err := syscall.Kill(r.servicePID(nsPID), syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	r.waitFor("[init] victim killed by signal SIGKILL, restarting in 0s")
	out = r.waitCount("[victim] pid=", 2)
	if n := strings.Count(out, "[init] victim started pid="); n != 2 {
		t.Errorf("victim started %d times, want 2 (one restart after kill -9)", n)
	}
}

func TestExitCodesDecideRestart(t *testing.T) {
	r := startInit(t, `
services:
  crashes:
    user: "65534"
    command: [sh, -c, 'echo run; exit 42']
    restart: {backoff_start: 1h, backoff_max: 1h}
  finishes:
    user: "65534"
    command: [sh, -c, 'echo run; exit 0']
  terminated:
    user: "65534"
    command: [sh, -c, 'kill -TERM $$']
`)
	r.waitFor("[init] crashes exited code=42, restarting in 0s")
	// The second crash within reset_after waits an hour: one restart, then backoff.
	r.waitFor("[init] crashes exited code=42, restarting in 1h0m0s")
	r.waitFor("[init] finishes exited code=0, not restarting")
	r.waitFor("[init] terminated killed by signal SIGTERM, not restarting")
	status, code := r.ctl("status")
	if code != 0 {
		t.Fatalf("ctl status exited %d: %s", code, status)
	}
	for _, want := range []*regexp.Regexp{
		regexp.MustCompile(`(?m)^crashes\s+longrun\s+backoff\s+-\s+-\s+2\s+exited code=42$`),
		regexp.MustCompile(`(?m)^finishes\s+longrun\s+down\s+-\s+-\s+0\s+exited code=0$`),
		regexp.MustCompile(`(?m)^terminated\s+longrun\s+down\s+-\s+-\s+0\s+killed by signal SIGTERM$`),
	} {
		if !want.MatchString(status) {
			t.Errorf("ctl status does not match %s:\n%s", want, status)
		}
	}
}

func TestFatalExitStopsEverythingInReverseOrder(t *testing.T) {
	r := startInit(t, `
services:
  base:
    user: "65534"
    command: [sleep, "1000"]
  middle:
    user: "65534"
    command: [sleep, "1000"]
    depends_on: [base]
  top:
    user: "65534"
    command: [sleep, "1000"]
    depends_on: [middle]
  doomed:
    user: "65534"
    command: [sh, -c, 'exit 100']
    depends_on: [top]
`)
	if code := r.wait(); code != 100 {
		t.Errorf("init exited %d, want 100", code)
	}
	out := r.out.String()
	before(t, out, "[init] doomed exited code=100: fatal", "[init] stopping top")
	before(t, out, "[init] top stopped", "[init] stopping middle")
	before(t, out, "[init] middle stopped", "[init] stopping base")
	before(t, out, "[init] base stopped", "[init] all services stopped, exiting with code 100")
}

func TestSIGTERMEscalatesToSIGKILLAfterGrace(t *testing.T) {
	r := startInit(t, `
services:
  stubborn:
    user: "65534"
    command: [sh, -c, 'trap "" TERM; echo ignoring TERM; exec sleep 1000']
    stop_grace: 1s
  agent:
    user: "65534"
    command: [`+slapenir+`, agent, --interval, 20ms, --health-url, "http://127.0.0.1:1/health"]
`)
	r.waitFor("[stubborn] ignoring TERM")
	r.waitFor("Heartbeat #2 ")
	start := time.Now()
	r.signal(syscall.SIGTERM)
	code := r.wait()
	took := time.Since(start)
	if code != 0 {
		t.Errorf("init exited %d after SIGTERM, want 0", code)
	}
	// Docker sends SIGKILL 10s after SIGTERM: init must be gone by then.
	if took > 10*time.Second {
		t.Errorf("init took %s to stop, beyond Docker's 10s", took)
	}
	out := r.out.String()
	for _, want := range []string{
		"[init] received SIGTERM: stopping all services",
		"[init] stubborn still running SIGTERM after 1s: sending SIGKILL",
		"[init] stubborn stopped (killed by signal SIGKILL)",
		"[INFO] Received signal terminated, initiating graceful shutdown...",
		"[INFO] Total heartbeats: ",
		"[init] agent stopped (exited code=0)",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q", want)
		}
	}
}

func TestCrashLoopBacksOffAndResets(t *testing.T) {
	r := startInit(t, `
services:
  looping:
    user: "65534"
    command: [sh, -c, 'exit 1']
    restart: {backoff_start: 20ms, backoff_max: 160ms, reset_after: 1h}
  stable:
    user: "65534"
    command: [sh, -c, 'sleep 0.05; exit 1']
    restart: {backoff_start: 1h, backoff_max: 1h, reset_after: 10ms}
`)
	out := r.waitCount("[init] looping exited", 6)
	var delays []string
	for _, m := range regexp.MustCompile(`\[init\] looping exited code=1, restarting in (\S+)\n`).FindAllStringSubmatch(out, 6) {
		delays = append(delays, m[1])
	}
	if got, want := strings.Join(delays, " "), "0s 20ms 40ms 80ms 160ms 160ms"; got != want {
		t.Errorf("backoff delays = %q, want %q", got, want)
	}
	// A run longer than reset_after starts the count afresh: always immediate.
	out = r.waitCount("[init] stable exited code=1, restarting in 0s", 3)
	if strings.Contains(out, "[init] stable exited code=1, restarting in 1h") {
		t.Error("stable service was backed off although each run outlived reset_after")
	}
}
