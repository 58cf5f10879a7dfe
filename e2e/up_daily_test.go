package e2e

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/slapenir/slapenir/internal/audit"
)

// needRootUp skips a test of up's confined mode without root or its tools.
func needRootUp(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("runs up with the agent in its own network namespace as uid 1000: needs root")
	}
	for _, tool := range []string{"ip", "unshare"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("needs %s (iproute2, util-linux): %v", tool, err)
		}
	}
}

// upEnv is the test's environment without what would steer up elsewhere,
// with a temporary directory of the test's own.
func upEnv(t *testing.T, tmp string) []string {
	return append(envWithout("OLLAMA_HOST", "OLLAMA_MODEL", "STEP_CA_URL", "STEP_TOKEN", "STEP_FINGERPRINT", "SLAPENIR_STATE_DIR",
		"HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy", "TMPDIR"), "TMPDIR="+tmp)
}

// `up --shell` is what `docker exec -it slapenir-agent bash` is in the
// container: a shell as the agent with its environment, in its namespace;
// up stops when it exits, with its code.
func TestUpShell(t *testing.T) {
	needRootUp(t)
	dir := agentTempDir(t)
	u := launchUp(t, nil, strings.NewReader("echo shell-uid=$(id -u)\necho shell-proxy=$http_proxy\necho shell-pwd=$(pwd)\nexit 5\n"),
		"", upEnv(t, dir), "--ephemeral", "--fake-ollama", "--shell")
	u.waitFor(t, `^\[up\] the agent's shell exited with code 5; stopping`, 2*time.Minute)
	<-u.done
	if code := exitCode(u.err); code != 5 {
		t.Errorf("up exited %d, want the shell's 5", code)
	}
	// bash -i prompts on stderr, so a line may start with its prompt.
	u.waitFor(t, `shell-uid=1000$`, time.Second)
	u.waitFor(t, `shell-proxy=http://127.0.0.1:3128$`, time.Second)
	u.waitFor(t, `shell-pwd=/.*/agent/workspace$`, time.Second)
	u.waitFor(t, `and its temporary state directory is removed$`, time.Second)
}

// The state directory is kept across runs — the audit log goes on as one
// verifiable chain, the CA stays — and is locked: a second up on it is
// refused, naming the first.
func TestUpStateKeptAndLocked(t *testing.T) {
	needRootUp(t)
	dir := agentTempDir(t)
	state := filepath.Join(dir, "state")
	env := upEnv(t, dir)
	first := startUp(t, state, env, "--fake-ollama", "--heartbeat", "1s")
	e := first.endpoints(true)
	first.waitFor(t, `^\[up\] SLAPENIR is up; every agent service is ready`, time.Minute)

	// slapenir shell, from another terminal, joins the running up's agent.
	joined, err := exec.Command(slapenir, "shell", "--state-dir", state, "-c", `echo "uid=$(id -u) proxy=$http_proxy net=$(readlink /proc/self/ns/net)"`).CombinedOutput()
	hostNet, _ := os.Readlink("/proc/self/ns/net")
	if err != nil || !strings.HasPrefix(string(joined), "uid=1000 proxy=http://127.0.0.1:3128 net=") || strings.Contains(string(joined), hostNet) {
		t.Errorf("slapenir shell --state-dir %s: %v\n%s(want uid 1000, the agent's proxy, not the host's network namespace %s)", state, err, joined, hostNet)
	}

	second := startUp(t, state, env, "--fake-ollama")
	select {
	case <-second.done:
	case <-time.After(time.Minute):
		t.Fatal("a second up on the same state directory is still running: it was not refused")
	}
	if code := exitCode(second.err); code != 1 {
		t.Errorf("a second up on the same state directory exited %d, want 1", code)
	}
	second.waitFor(t, `^up: the state directory `+regexp.QuoteMeta(state)+` is in use by up pid `+strconv.Itoa(first.cmd.Process.Pid)+`, started `, time.Second)

	caRoot, err := os.ReadFile(filepath.Join(state, "dev-ca", "root_ca.pem"))
	if err != nil {
		t.Fatal(err)
	}
	if code := first.interrupt(30 * time.Second); code != 0 {
		t.Fatalf("up exited %d after Ctrl-C", code)
	}
	first.waitFor(t, `^\[up\] stopped; .*; kept in `+regexp.QuoteMeta(state)+`: the audit log `+regexp.QuoteMeta(e.AuditFile), time.Second)
	before := len(readAudit(t, e.AuditFile))
	if before == 0 {
		t.Fatal("the first run left no audit records")
	}

	third := startUp(t, state, env, "--fake-ollama", "--", "true")
	third.waitFor(t, "^\\[up\\] `true` exited \\(code 0\\); stopping", 2*time.Minute)
	<-third.done
	if code := exitCode(third.err); code != 0 {
		t.Fatalf("up -- true exited %d", code)
	}
	after := readAudit(t, e.AuditFile)
	if len(after) <= before {
		t.Errorf("the second run added no audit records (%d before, %d after)", before, len(after))
	}
	if again, _ := os.ReadFile(filepath.Join(state, "dev-ca", "root_ca.pem")); string(again) != string(caRoot) {
		t.Error("the development CA was replaced between runs on one state directory")
	}
	out, err := exec.Command(slapenir, "audit", "verify", e.AuditFile, "--key", filepath.Join(state, "audit.key"),
		"--checkpoint", filepath.Join(state, "audit.checkpoint")).CombinedOutput()
	if err != nil {
		t.Errorf("the audit log of two runs does not verify as one chain: %v\n%s", err, out)
	}
}

// A service that crash-loops in its first seconds is up's error, with the
// service's last lines and the likely cause, and not "SLAPENIR is up".
func TestUpReportsACrashLoop(t *testing.T) {
	needRootUp(t)
	dir := agentTempDir(t)
	services := filepath.Join(dir, "services.yaml")
	writeFile(t, services, `services:
  crasher:
    command: ["sh", "-c", "echo 'open /root/secret/bin: permission denied' >&2; exit 1"]
    user: "1000:1000"
`)
	u := launchUp(t, nil, nil, "", upEnv(t, dir), "--ephemeral", "--fake-ollama", "--services", services)
	select {
	case <-u.done:
	case <-time.After(time.Minute):
		t.Fatal("up still runs a minute after its only service began crash-looping")
	}
	if code := exitCode(u.err); code != 1 {
		t.Errorf("up exited %d, want 1", code)
	}
	out := u.output()
	for _, want := range []string{
		"up: the agent's service crasher keeps crashing (",
		"likely cause: a file or directory it needs is not accessible",
		"    [crasher] open /root/secret/bin: permission denied",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("up's output lacks %q", want)
		}
	}
	if strings.Contains(out, "SLAPENIR is up") {
		t.Error("up said it was up while its service crash-looped")
	}
	if t.Failed() {
		t.Logf("output:\n%s", out)
	}
}

// kill -9 of an --ephemeral up leaves its temporary state directory (the
// CA's keys in it); the next up removes it and says so.
func TestUpRemovesWhatAKilledUpLeft(t *testing.T) {
	needRootUp(t)
	dir := agentTempDir(t)
	env := upEnv(t, dir)
	first := launchUp(t, nil, nil, "", env, "--ephemeral", "--fake-ollama", "--heartbeat", "1s")
	m := first.waitFor(t, `^\[up\] SLAPENIR is up; every agent service is ready; state directory (\S+)$`, time.Minute)
	left := m[1]
	if err := syscall.Kill(first.cmd.Process.Pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-first.done
	if _, err := os.Stat(filepath.Join(left, "dev-ca", "root_ca_key.pem")); err != nil {
		t.Fatalf("the killed up left no CA key to clean up (%v): the test proves nothing", err)
	}
	// Give the kernel a moment to kill what had up as its parent.
	time.Sleep(500 * time.Millisecond)
	next := launchUp(t, nil, nil, "", env, "--ephemeral", "--fake-ollama", "--", "true")
	next.waitFor(t, fmt.Sprintf(`^\[up\] removed %s, left \(CA keys included\) by an --ephemeral up that did not stop cleanly$`, regexp.QuoteMeta(left)), time.Minute)
	<-next.done
	if _, err := os.Stat(left); !os.IsNotExist(err) {
		t.Errorf("%s is still there: %v", left, err)
	}
}

// `slapenir up | tee log`, Ctrl-C: the terminal's SIGINT ends tee too, so
// up's next write to stdout meets a closed pipe. up must still stop
// everything it started: the proxy writes its audit checkpoint, the
// namespace, veth, /etc/netns entry and an --ephemeral state directory (CA
// keys in it) are removed; what it says goes to stderr instead.
func TestUpStopsCleanlyWhenItsOutputBreaks(t *testing.T) {
	needRootUp(t)
	for _, ephemeral := range []bool{false, true} {
		t.Run(fmt.Sprintf("ephemeral=%v", ephemeral), func(t *testing.T) {
			dir := agentTempDir(t)
			args := []string{"up", "--fake-ollama", "--heartbeat", "1s"}
			if ephemeral {
				args = append(args, "--ephemeral")
			} else {
				args = append(args, "--state-dir", filepath.Join(dir, "state"))
			}
			cmd := exec.Command(slapenir, args...)
			cmd.Env = upEnv(t, dir)
			cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
			stdout, err := cmd.StdoutPipe()
			if err != nil {
				t.Fatal(err)
			}
			var stderr lockedBuffer
			cmd.Stderr = &stderr
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			done := make(chan error, 1)
			go func() { done <- cmd.Wait() }()
			t.Cleanup(func() {
				select {
				case <-done:
				default:
					_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
					<-done
				}
				if t.Failed() {
					t.Logf("up's stderr:\n%s", stderr.String())
				}
			})

			// Read up's stdout as tee would, until it is up and Ollama
			// answered through the proxy (audit records exist); then tee dies.
			var state, netns, hostIf string
			sc := bufio.NewScanner(stdout)
			verified := false
			for !verified || netns == "" {
				if !sc.Scan() {
					t.Fatalf("up's stdout ended (%v) before it was up with its namespace and Ollama answered", sc.Err())
				}
				verified = verified || strings.HasPrefix(sc.Text(), "[ollama-verify] Ollama is reachable through proxy!")
				if m := regexp.MustCompile(`^\[up\] SLAPENIR is up; every agent service is ready; state directory (\S+)$`).FindStringSubmatch(sc.Text()); m != nil {
					state = m[1]
				}
				if m := regexp.MustCompile(`network namespace (\S+) \(veth (\S+) `).FindStringSubmatch(sc.Text()); m != nil {
					netns, hostIf = m[1], m[2]
				}
			}
			stdout.Close()
			// The heartbeat writes a line a second: up has met the closed
			// pipe by now, and must still run.
			time.Sleep(2500 * time.Millisecond)
			select {
			case err := <-done:
				done <- err
				t.Fatalf("up exited (%v) when its stdout's reader went away, before any Ctrl-C", err)
			default:
			}
			if err := syscall.Kill(cmd.Process.Pid, syscall.SIGINT); err != nil {
				t.Fatal(err)
			}
			select {
			case err := <-done:
				done <- err
				if err != nil {
					t.Errorf("up exited with %v after SIGINT, want 0", err)
				}
			case <-time.After(30 * time.Second):
				t.Fatal("up did not exit within 30s of SIGINT")
			}
			if !strings.Contains(stderr.String(), "[up] stopped; no process, namespace, veth or rule of this run is left") {
				t.Error("up's stop line did not reach stderr")
			}
			for _, path := range []string{"/run/netns/" + netns, "/sys/class/net/" + hostIf, "/etc/netns/" + netns} {
				if _, err := os.Lstat(path); err == nil {
					t.Errorf("%s is left behind", path)
				}
			}
			if ephemeral {
				if _, err := os.Stat(state); !os.IsNotExist(err) {
					t.Errorf("the ephemeral state directory %s (CA keys in it) is left behind: %v", state, err)
				}
				return
			}
			// The proxy stopped on SIGTERM and wrote its checkpoint at the
			// log's head (SIGKILL would have left the one it wrote at start).
			recs := readAudit(t, filepath.Join(state, "audit", "audit.jsonl"))
			if len(recs) == 0 {
				t.Fatal("no audit records")
			}
			var cp struct{ Seq uint64 }
			b, err := os.ReadFile(filepath.Join(state, "audit.checkpoint"))
			if err != nil || json.Unmarshal(b, &cp) != nil {
				t.Fatalf("audit checkpoint: %v %s", err, b)
			}
			if last := recs[len(recs)-1].Seq; cp.Seq != last {
				t.Errorf("the checkpoint is at seq %d, the log's last record is %d: the proxy did not stop cleanly", cp.Seq, last)
			}
		})
	}
}

// A shell joined with slapenir shell, and what it started (in its own
// session too), ends with up: none is left in a namespace nothing names,
// or, unconfined, on this machine as the agent.
func TestUpEndsJoinedShells(t *testing.T) {
	eachConfinement(t, func(t *testing.T, u *upProcess, dir, state string, confined bool) {
		u.waitFor(t, `^\[up\] SLAPENIR is up; every agent service is ready`, 2*time.Minute)

		// An interactive shell on a terminal that stays open (it
		// ignores SIGTERM), and one that runs a job in a session of its
		// own and waits.
		tag := strconv.Itoa(4000000 + os.Getpid()%100000)
		interactive := exec.Command(slapenir, "shell", "--state-dir", state)
		stdin, err := interactive.StdinPipe()
		if err != nil {
			t.Fatal(err)
		}
		defer stdin.Close()
		script := exec.Command(slapenir, "shell", "--state-dir", state, "-c", "setsid sleep "+tag+"1 & sleep "+tag+"2")
		var shells []*exec.Cmd
		for _, c := range []*exec.Cmd{interactive, script} {
			c.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
			if err := c.Start(); err != nil {
				t.Fatal(err)
			}
			shells = append(shells, c)
		}
		waited := make(chan struct{}, len(shells))
		for _, c := range shells {
			go func() { _ = c.Wait(); waited <- struct{}{} }()
		}
		procs := map[int]string{interactive.Process.Pid: "the interactive shell", script.Process.Pid: "the -c shell"}
		for _, arg := range []string{tag + "1", tag + "2"} {
			pid := waitForProcess(t, "sleep\x00"+arg+"\x00", 10*time.Second)
			procs[pid] = "sleep " + arg
		}
		t.Cleanup(func() {
			for pid := range procs {
				_ = syscall.Kill(pid, syscall.SIGKILL)
			}
		})
		if left := waitGone(procs, time.Second); len(left) != len(procs) {
			t.Fatalf("the joined shells did not start: only %v run", left)
		}

		if code := u.interrupt(30 * time.Second); code != 0 {
			t.Errorf("up exited %d after SIGINT, want 0", code)
		}
		if left := waitGone(procs, 5*time.Second); len(left) > 0 {
			t.Errorf("left running after up stopped: %v", left)
		}
		u.waitFor(t, `^\[up\] ended \d+ process\(es\) of the agent's shells \(slapenir shell\) and what they started$`, time.Second)
		for range shells {
			select {
			case <-waited:
			case <-time.After(5 * time.Second):
				t.Fatal("a joined shell's slapenir shell has not exited")
			}
		}
	})
}

// waitForProcess returns the pid of the process whose command line is
// cmdline (NUL-separated, as /proc has it).
func waitForProcess(t *testing.T, cmdline string, limit time.Duration) int {
	t.Helper()
	for deadline := time.Now().Add(limit); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		ents, _ := os.ReadDir("/proc")
		for _, ent := range ents {
			pid, err := strconv.Atoi(ent.Name())
			if err != nil {
				continue
			}
			if b, _ := os.ReadFile(filepath.Join("/proc", ent.Name(), "cmdline")); string(b) == cmdline {
				return pid
			}
		}
	}
	t.Fatalf("no process %q within %s", strings.ReplaceAll(cmdline, "\x00", " "), limit)
	return 0
}

// lockedBuffer is a bytes.Buffer that one goroutine writes while another
// reads.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// Every command up prints for the user to try works where up says to run
// it: the agent's as the agent (in slapenir shell: uid 1000, the agent's
// environment, whose NO_PROXY holds 127.0.0.1), the others on this
// machine. Printed as `ip netns exec NS curl …`, they worked only with
// root's environment and proved nothing about the agent.
func TestUpPrintsCommandsThatWork(t *testing.T) {
	eachConfinement(t, func(t *testing.T, u *upProcess, dir, state string, confined bool) {
		e := u.endpoints(confined)
		u.waitFor(t, `^\[up\] Ctrl-C stops everything\.$`, 2*time.Minute)
		asAgent, onHost := printedCommands(t, u.output())
		if len(asAgent) < 3 || len(onHost) < 3 {
			t.Fatalf("printed commands: as the agent %q, on this machine %q", asAgent, onHost)
		}
		run := func(where string, cmd *exec.Cmd, line string) {
			out, err := cmd.CombinedOutput()
			if err != nil {
				t.Errorf("%s: %s: %v\n%s", where, line, err, out)
				return
			}
			if strings.Contains(line, "/api/tags") && !strings.Contains(string(out), "qwen2.5-coder:7b") {
				t.Errorf("%s: %s: no model in the answer:\n%s", where, line, out)
			}
		}
		for _, line := range asAgent {
			run("as the agent", exec.Command(slapenir, "shell", "--state-dir", state, "-c", "exec timeout 20 "+line), line)
		}
		for _, line := range onHost {
			c := exec.Command("timeout", "20", "bash", "-c", line)
			c.Env = upEnv(t, dir)
			run("on this machine", c, line)
		}
		if code := u.interrupt(30 * time.Second); code != 0 {
			t.Errorf("up exited %d after SIGINT", code)
		}
		// The agent's lines went through the proxy, as the agent.
		seen := map[string]bool{}
		for _, r := range readAudit(t, e.AuditFile) {
			if r.Identity == "agent" && r.Phase != audit.PhaseStart {
				seen[r.Host] = true
			}
		}
		if !seen["example.com"] {
			t.Errorf("the agent's curl http://example.com/ is not in the audit log as the agent's (hosts seen: %v)", seen)
		}
	})
}

// printedCommands are the commands of up's report: those to run as the
// agent, and those to run on this machine, without their comments.
func printedCommands(t *testing.T, output string) (asAgent, onHost []string) {
	t.Helper()
	var into *[]string
	for _, line := range strings.Split(output, "\n") {
		switch {
		case strings.HasPrefix(line, "[up] Try it as the agent"):
			into = &asAgent
		case strings.HasPrefix(line, "[up] On this machine:"):
			into = &onHost
		case into != nil && strings.HasPrefix(line, "[up]   "):
			cmd, _, _ := strings.Cut(strings.TrimPrefix(line, "[up]   "), "    # ")
			*into = append(*into, cmd)
		default:
			into = nil
		}
	}
	return asAgent, onHost
}

// The seed's helper commands work in a shell joined with slapenir shell:
// `ollama-proxy-helper PORT &` finds the agent's certificates where up put
// them (not the image's /home/agent/certs: up's HOME is below its state
// directory), and so does the seed's Option C, `python3
// ~/scripts/ollama-proxy-helper.py PORT &`. (The relay already serves the
// helper on 8765, so each takes another port, as it would in the image.)
func TestUpOllamaProxyHelperInTheAgent(t *testing.T) {
	eachConfinement(t, func(t *testing.T, u *upProcess, dir, state string, confined bool) {
		u.waitFor(t, `^\[up\] SLAPENIR is up; every agent service is ready`, 2*time.Minute)
		var ports []string
		for range 2 {
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			ports = append(ports, strconv.Itoa(ln.Addr().(*net.TCPAddr).Port))
			ln.Close()
		}
		for i, start := range []string{"ollama-proxy-helper " + ports[0], "python3 ~/scripts/ollama-proxy-helper.py " + ports[1]} {
			script := fmt.Sprintf(`%s >"$HOME/helper%d.log" 2>&1 &
helper=$!
for i in $(seq 100); do curl -sf -m 5 http://127.0.0.1:%s/api/tags && exit 0; kill -0 $helper || break; sleep 0.1; done
echo "no helper on port %s; its log:"; cat "$HOME/helper%d.log"; exit 1`, start, i, ports[i], ports[i], i)
			out, err := exec.Command(slapenir, "shell", "--state-dir", state, "-c", script).CombinedOutput()
			if err != nil || !strings.Contains(string(out), "qwen2.5-coder:7b") {
				t.Errorf("in slapenir shell, %s &: %v\n%s", start, err, out)
			}
		}
		if code := u.interrupt(30 * time.Second); code != 0 {
			t.Errorf("up exited %d after SIGINT", code)
		}
	})
}
