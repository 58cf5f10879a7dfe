package supervise_test

import (
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

func TestDependencyOrderAndReadiness(t *testing.T) {
	// A port nobody listens on yet: the test opens it only once it has seen
	// the service start, so "ready" can only come after that.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	r := startInit(t, fmt.Sprintf(`
services:
  first:
    type: oneshot
    user: "65534"
    command: [sh, -c, 'sleep 0.1; echo first done']
  parallel:
    user: "65534"
    command: [sh, -c, 'echo parallel up; exec sleep 1000']
  notified:
    user: "65534"
    depends_on: [first]
    command: [sh, -c, 'sleep 0.1; echo telling init; echo READY >&4; exec sleep 1000']
    ready: {notify_fd: 4}
  probed:
    user: "65534"
    depends_on: [notified]
    command: [sh, -c, 'echo probe me; exec sleep 1000']
    ready: {tcp: "%s", interval: 10ms}
  checked:
    user: "65534"
    depends_on: [probed]
    command: [sleep, "1000"]
    ready: {command: [sh, -c, 'test "$SLAPENIR_SERVICE" = checked'], interval: 10ms}
  last:
    user: "65534"
    depends_on: [checked, parallel]
    command: [sh, -c, 'echo last up; exec sleep 1000']
`, addr))
	r.waitFor("[probed] probe me")
	ln, err = net.Listen("tcp", addr)
	if err != nil {
		t.Fatalf("reopen %s: %v", addr, err)
	}
	defer ln.Close()
	out := r.waitFor("[last] last up")
	// Independent services start together, before the oneshot is done.
	before(t, out, "[init] parallel started", "[init] first exited code=0, done")
	before(t, out, "[init] first exited code=0, done", "[init] notified started")
	before(t, out, "[init] notified started", "[init] notified ready")
	before(t, out, "[init] notified ready", "[init] probed started")
	before(t, out, "[probed] probe me", "[init] probed ready")
	before(t, out, "[init] probed ready", "[init] checked started")
	before(t, out, "[init] checked ready", "[init] last started")
	if health, code := r.ctl("health"); code != 0 {
		t.Errorf("ctl health exited %d with every service up: %s", code, health)
	}
	r.signal(syscall.SIGTERM)
	if code := r.wait(); code != 0 {
		t.Errorf("init exited %d, want 0", code)
	}
	out = r.out.String()
	before(t, out, "[init] last stopped", "[init] stopping checked")
	before(t, out, "[init] checked stopped", "[init] stopping probed")
	before(t, out, "[init] probed stopped", "[init] stopping notified")
}

func TestRequiredOneshotFailureStopsTheContainer(t *testing.T) {
	r := startInit(t, `
services:
  running:
    user: "65534"
    command: [sleep, "1000"]
  bootstrap:
    type: oneshot
    user: "65534"
    command: [sh, -c, 'sleep 0.1; echo no token >&2; exit 3']
  never:
    user: "65534"
    depends_on: [bootstrap]
    command: [sleep, "1000"]
`)
	if code := r.wait(); code != 3 {
		t.Errorf("init exited %d, want the oneshot's code 3", code)
	}
	out := r.out.String()
	for _, want := range []string{"[bootstrap] no token", "[init] bootstrap exited code=3: required oneshot failed, stopping all services", "[init] running stopped"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q", want)
		}
	}
	if strings.Contains(out, "[init] never started") {
		t.Error("a service that depends on the failed oneshot was started")
	}
}

func TestOptionalOneshotFailureGoesOn(t *testing.T) {
	r := startInit(t, `
services:
  verify:
    type: oneshot
    required: false
    user: "65534"
    command: [sh, -c, 'exit 7']
  agent:
    user: "65534"
    depends_on: [verify]
    command: [sh, -c, 'echo agent runs; exec sleep 1000']
`)
	r.waitFor("[init] verify exited code=7: optional oneshot failed, continuing")
	r.waitFor("[agent] agent runs")
	if health, code := r.ctl("health"); code != 0 {
		t.Errorf("ctl health exited %d although only an optional oneshot failed: %s", code, health)
	}
}

func TestOneshotTimeout(t *testing.T) {
	r := startInit(t, `
services:
  slow:
    type: oneshot
    user: "65534"
    command: [sleep, "1000"]
    timeout: 100ms
`)
	if code := r.wait(); code != 124 {
		t.Errorf("init exited %d, want 124 for a required oneshot past its timeout", code)
	}
	r.waitFor("[init] slow still running after its timeout of 100ms: killing it")
}

func TestPerServiceUserEnvironmentAndPrivileges(t *testing.T) {
	r := startInit(t, `
services:
  setup:
    type: oneshot
    user: "65534"
    command: [sh, -c, 'echo SESSION=from-oneshot >> "$SLAPENIR_EXPORT"']
  plain:
    user: "1000:1001"
    groups: ["27", "65534"]
    workdir: /tmp
    depends_on: [setup]
    env: {EXTRA: per-service, FROM_CONTAINER: overridden}
    command: [sh, -c, 'echo "env SESSION=$SESSION EXTRA=$EXTRA FROM_CONTAINER=$FROM_CONTAINER KEEP=$KEEP_ME pwd=$(pwd)"; grep -E "^(Uid|Gid|Groups|CapEff|CapPrm|CapBnd|CapAmb|NoNewPrivs):" /proc/self/status | tr "\t" " "']
  named:
    user: nobody
    command: [sh, -c, 'echo "named uid=$(id -u) HOME=$HOME USER=$USER"']
  rooted:
    user: "0"
    command: [sh, -c, 'grep -E "^(Uid|CapEff|CapBnd|NoNewPrivs):" /proc/self/status | tr "\t" " " | sed "s/^/rooted /"']
  netadmin:
    user: "1000"
    privileged: true
    command: [sh, -c, 'grep -E "^(Uid|CapEff|CapAmb|NoNewPrivs):" /proc/self/status | tr "\t" " " | sed "s/^/netadmin /"']
`, "FROM_CONTAINER=container", "KEEP_ME=kept")
	out := r.waitFor("[plain] NoNewPrivs:")
	for _, want := range []string{
		"[plain] env SESSION=from-oneshot EXTRA=per-service FROM_CONTAINER=overridden KEEP=kept pwd=/tmp",
		"[plain] Uid: 1000 1000 1000 1000",
		"[plain] Gid: 1001 1001 1001 1001",
		"[plain] CapEff: 0000000000000000",
		"[plain] CapPrm: 0000000000000000",
		"[plain] CapBnd: 0000000000000000",
		"[plain] NoNewPrivs: 1",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q", want)
		}
	}
	groups := strings.Fields(field(t, out, "[plain] Groups:"))
	for _, g := range []string{"27", "65534", "1001"} {
		if !slices.Contains(groups, g) {
			t.Errorf("supplementary groups %v lack %s", groups, g)
		}
	}
	r.waitFor("[named] named uid=65534 HOME=")
	out = r.waitFor("[rooted] rooted NoNewPrivs: 1")
	for _, want := range []string{"[rooted] rooted Uid: 0 0 0 0", "[rooted] rooted CapEff: 0000000000000000", "[rooted] rooted CapBnd: 0000000000000000"} {
		if !strings.Contains(out, want) {
			t.Errorf("a root service without privileged: must have no capabilities; output lacks %q", want)
		}
	}
	out = r.waitFor("[netadmin] netadmin NoNewPrivs: 1")
	for _, want := range []string{"[netadmin] netadmin Uid: 1000 1000 1000 1000", "[netadmin] netadmin CapEff: 0000000000001000", "[netadmin] netadmin CapAmb: 0000000000001000"} {
		if !strings.Contains(out, want) {
			t.Errorf("privileged service must keep only CAP_NET_ADMIN; output lacks %q", want)
		}
	}
}

func TestMissingUserIsAClearError(t *testing.T) {
	r := startInit(t, `
services:
  agent:
    command: [sleep, "1000"]
    user: no-such-user-here
`)
	if code := r.wait(); code != 2 {
		t.Errorf("init exited %d, want 2", code)
	}
	r.waitFor(`service "agent": user "no-such-user-here" does not exist on this system`)
}

func TestLinesArePrefixedWholeAndSafe(t *testing.T) {
	const n = 2000
	r := startInit(t, fmt.Sprintf(`
services:
  alpha:
    user: "65534"
    command: [sh, -c, 'i=0; while [ $i -lt %[1]d ]; do echo "alpha line $i aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"; i=$((i+1)); done; sleep 1000']
  beta:
    user: "65534"
    command: [sh, -c, 'i=0; while [ $i -lt %[1]d ]; do echo "beta line $i bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb" >&2; i=$((i+1)); done; sleep 1000']
  odd:
    type: oneshot
    user: "65534"
    command: [sh, -c, 'printf "bin\001\033[31m\377end\r\n"; head -c 20000 /dev/zero | tr "\0" x; echo; printf "no newline at the end"']
`, n))
	r.waitFor(fmt.Sprintf("alpha line %d ", n-1))
	r.waitFor(fmt.Sprintf("beta line %d ", n-1))
	out := r.waitFor("[odd] no newline at the end")
	line := regexp.MustCompile(`^\[(init|alpha|beta|odd)\] `)
	counts := map[string]int{}
	for _, l := range strings.Split(strings.TrimSuffix(out, "\n"), "\n") {
		m := line.FindStringSubmatch(l)
		if m == nil {
			t.Fatalf("line without a service prefix: %.100q", l)
		}
		switch m[1] {
		case "alpha":
			if !regexp.MustCompile(`^\[alpha\] alpha line \d+ a{44}$`).MatchString(l) {
				t.Fatalf("torn alpha line: %q", l)
			}
		case "beta":
			if !regexp.MustCompile(`^\[beta\] beta line \d+ b{49}$`).MatchString(l) {
				t.Fatalf("torn beta line: %q", l)
			}
		}
		counts[m[1]]++
	}
	if counts["alpha"] != n || counts["beta"] != n {
		t.Errorf("got %d alpha and %d beta lines, want %d each", counts["alpha"], counts["beta"], n)
	}
	if !strings.Contains(out, `[odd] bin\x01\x1b[31m\xffend`+"\n") {
		t.Error("binary bytes and control characters were not escaped")
	}
	xs := regexp.MustCompile(`(?m)^\[odd\] (x+)$`).FindAllStringSubmatch(out, -1)
	total := 0
	for _, m := range xs {
		total += len(m[1])
	}
	if len(xs) != 3 || total != 20000 {
		t.Errorf("a 20000-byte line came out as %d lines holding %d bytes, want 3 lines holding all 20000", len(xs), total)
	}
}

func TestControlCommands(t *testing.T) {
	r := startInit(t, `
services:
  web:
    user: "65534"
    command: [sh, -c, 'echo web pid=$$; trap "echo got HUP" HUP; while :; do sleep 0.05; done']
    forward_hup: true
  other:
    user: "65534"
    command: [sleep, "1000"]
`)
	r.waitFor("[web] web pid=")
	fi, err := os.Stat(r.socket)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o660 || fi.Sys().(*syscall.Stat_t).Gid != 65534 {
		t.Errorf("socket mode %v gid %d, want 0660 and the configured group 65534", fi.Mode().Perm(), fi.Sys().(*syscall.Stat_t).Gid)
	}
	// Neither root nor in the socket's group: refused by the socket's mode.
	outsider := exec.Command(slapenir, "ctl", "--socket", r.socket, "status")
	outsider.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 1000, Gid: 1000}}
	if msg, err := outsider.CombinedOutput(); err == nil || !strings.Contains(string(msg), "permission denied") {
		t.Errorf("uid 1000 outside the socket's group used ctl: err=%v output=%s", err, msg)
	}
	member := exec.Command(slapenir, "ctl", "--socket", r.socket, "health")
	member.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 1000, Gid: 1000, Groups: []uint32{65534}}}
	if msg, err := member.CombinedOutput(); err != nil {
		t.Errorf("member of the socket's group could not use ctl: %v: %s", err, msg)
	}

	status, code := r.ctl("status")
	if code != 0 || !regexp.MustCompile(`(?m)^web\s+longrun\s+up\s+\d+`).MatchString(status) {
		t.Errorf("ctl status (exit %d):\n%s", code, status)
	}
	r.signal(syscall.SIGHUP)
	r.waitFor("[web] got HUP")

	if msg, code := r.ctl("stop", "web"); code != 0 || strings.TrimSpace(msg) != "web stopped" {
		t.Errorf("ctl stop web: exit %d: %s", code, msg)
	}
	if !strings.Contains(r.out.String(), "[init] web stopped (killed by signal SIGTERM)") {
		t.Error("ctl stop returned before the service was down")
	}
	if msg, code := r.ctl("health"); code != 1 || !strings.Contains(msg, "web is down") {
		t.Errorf("ctl health with web stopped: exit %d: %s", code, msg)
	}
	if msg, code := r.ctl("start", "web"); code != 0 || strings.TrimSpace(msg) != "web started" {
		t.Errorf("ctl start web: exit %d: %s", code, msg)
	}
	r.waitCount("[web] web pid=", 2)
	if msg, code := r.ctl("restart", "web"); code != 0 || strings.TrimSpace(msg) != "web started" {
		t.Errorf("ctl restart web: exit %d: %s", code, msg)
	}
	r.waitCount("[web] web pid=", 3)
	if msg, code := r.ctl("health"); code != 0 {
		t.Errorf("ctl health after restart: exit %d: %s", code, msg)
	}
	if msg, code := r.ctl("stop", "nope"); code != 1 || !strings.Contains(msg, `no service named "nope"`) {
		t.Errorf("ctl stop of an unknown service: exit %d: %s", code, msg)
	}
	r.signal(syscall.SIGTERM)
	if code := r.wait(); code != 0 {
		t.Errorf("init exited %d, want 0", code)
	}
}

func TestMalformedServiceFileIsRejectedWithLineNumbers(t *testing.T) {
	file := filepath.Join(t.TempDir(), "bad.yaml")
	if err := os.WriteFile(file, []byte("services:\n  web:\n    command: [x]\n    restart: {polcy: always}\n  db:\n    depends_on: [nothing]\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{{"init", "--config", file}, {"init", "--check", "--config", file}} {
		cmd := exec.Command(slapenir, args...)
		out, _ := cmd.CombinedOutput()
		if code := cmd.ProcessState.ExitCode(); code != 2 {
			t.Errorf("%v exited %d, want 2", args, code)
		}
		for _, want := range []string{
			file + `:4: unknown key "services.web.restart.polcy" (did you mean "policy"?)`,
			file + `:6: services.db.depends_on: "nothing" is not a service defined here`,
			file + `:5: services.db.command: missing (every service names the program it runs)`,
		} {
			if !strings.Contains(string(out), want) {
				t.Errorf("%v output lacks %q:\n%s", args, want, out)
			}
		}
	}
}

func TestShippedServiceFileChecks(t *testing.T) {
	needRoot(t)
	out, err := exec.Command(slapenir, "init", "--check", "--config", "../../agent/agent-services.yaml").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "8 services, OK") {
		t.Errorf("init --check of the shipped file: %v: %s", err, out)
	}
}

func TestDefaultUserFallsBackToUID1000(t *testing.T) {
	if _, err := exec.Command("id", "agent").Output(); err == nil {
		t.Skip("this machine has a user named agent: the fallback does not apply")
	}
	r := startInit(t, `
services:
  plain:
    command: [sh, -c, 'echo "uid=$(id -u)"; exec sleep 1000']
`)
	r.waitFor(`[init] service "plain": default user "agent" does not exist on this system, running it as uid 1000`)
	r.waitFor("[plain] uid=1000")
}

func TestHTTPReadinessWaitsFor2xx(t *testing.T) {
	var healthy atomic.Bool
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !healthy.Load() {
			http.Error(w, "warming up", http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(w, "ok")
	}))
	defer srv.Close()
	r := startInit(t, `
services:
  web:
    user: "65534"
    command: [sh, -c, 'echo warming up; exec sleep 1000']
    ready: {http: "`+srv.URL+`/health", interval: 10ms}
  client:
    user: "65534"
    depends_on: [web]
    command: [sh, -c, 'echo client up; exec sleep 1000']
`)
	r.waitFor("[web] warming up")
	if msg, code := r.ctl("health"); code != 1 || !strings.Contains(msg, "web is starting") {
		t.Errorf("ctl health while web answers 503: exit %d: %s", code, msg)
	}
	healthy.Store(true)
	out := r.waitFor("[client] client up")
	before(t, out, "[init] web ready", "[init] client started")
}

// TestManyServicesThatCannotStart: 100 services whose command does not
// exist are each retried with backoff, and init still answers ctl and
// stops on SIGTERM (it deadlocked past 64: the loop posted their exits to
// its own full channel).
func TestManyServicesThatCannotStart(t *testing.T) {
	var b strings.Builder
	b.WriteString("services:\n")
	for i := 0; i < 100; i++ {
		fmt.Fprintf(&b, "  missing-%d:\n    user: \"65534\"\n    command: [/no/such/command-%d]\n", i, i)
	}
	b.WriteString("  alive:\n    user: \"65534\"\n    command: [sh, -c, 'echo alive runs; exec sleep 1000']\n")
	r := startInit(t, b.String())
	r.waitFor("[alive] alive runs")
	r.waitFor("missing-99 cannot start")
	done := make(chan string, 1)
	go func() { out, _ := r.ctl("status"); done <- out }()
	select {
	case out := <-done:
		if !strings.Contains(out, "missing-99") || !strings.Contains(out, "alive") {
			t.Fatalf("ctl status: %s", out)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("init does not answer ctl status with 100 services that cannot start")
	}
	r.signal(syscall.SIGTERM)
	if code := r.wait(); code != 0 {
		t.Fatalf("init exited %d after SIGTERM, want 0", code)
	}
}
