package up

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/slapenir/slapenir/internal/supervise"
)

// Two ups on one state directory would interleave one audit log into a
// false tamper alarm: the second is refused and told who holds it.
func TestStateDirIsLocked(t *testing.T) {
	dir := t.TempDir()
	first := &Options{StateDir: dir, Env: []string{}}
	s1, err := first.openState(time.Now())
	if err != nil {
		t.Fatal(err)
	}
	_, err = (&Options{StateDir: dir, Env: []string{}}).openState(time.Now())
	if err == nil || !strings.Contains(err.Error(), "in use by up pid "+strconv.Itoa(os.Getpid())) {
		t.Fatalf("second open: %v, want a refusal naming this pid", err)
	}
	if err := s1.close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(dir); err != nil {
		t.Fatalf("a persistent state directory was removed: %v", err)
	}
	s2, err := (&Options{StateDir: dir, Env: []string{}}).openState(time.Now())
	if err != nil {
		t.Fatalf("after the first up stopped: %v", err)
	}
	s2.close()
}

// An --ephemeral up killed with -9 leaves its temporary directory (CA keys
// included); the next up removes it, and never one whose up still runs.
func TestStaleEphemeralDirsAreRemoved(t *testing.T) {
	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp)
	live, err := (&Options{Ephemeral: true, Env: []string{}}).openState(time.Now())
	if err != nil {
		t.Fatal(err)
	}
	defer live.close()
	dead := filepath.Join(tmp, ephemeralPrefix+"123")
	if err := os.MkdirAll(filepath.Join(dead, "dev-ca"), 0o700); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(dead, lockName), []byte("up pid 123, started then\n"), 0o644)
	os.WriteFile(filepath.Join(dead, "dev-ca", "root_ca_key.pem"), []byte("key"), 0o600)
	other := filepath.Join(tmp, "slapenir-up-notours")
	os.MkdirAll(other, 0o700) // no lock file: not an up's state directory
	removed, err := removeStaleEphemeral(tmp)
	if err != nil {
		t.Fatal(err)
	}
	if len(removed) != 1 || removed[0] != dead {
		t.Fatalf("removed %v, want only %s", removed, dead)
	}
	for _, keep := range []string{live.path, other} {
		if _, err := os.Stat(keep); err != nil {
			t.Errorf("%s was removed: %v", keep, err)
		}
	}
	if err := live.close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(live.path); !os.IsNotExist(err) {
		t.Errorf("an ephemeral state directory outlived its up: %v", err)
	}
}

// As root, a state directory uid 1000 cannot reach is refused up front,
// naming the directory in the way.
func TestAgentCanReach(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("checks what uid 1000 may enter; needs root to make directories it may not")
	}
	// Not t.TempDir: its parent is closed to others.
	base, err := os.MkdirTemp("", "reach-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(base) })
	os.Chmod(base, 0o755)
	closed := filepath.Join(base, "closed")
	deep := filepath.Join(closed, "state")
	os.MkdirAll(deep, 0o755)
	os.Chmod(closed, 0o700)
	err = agentCanReach(deep)
	if err == nil || !strings.Contains(err.Error(), "cannot enter "+closed+" (mode 0700") {
		t.Fatalf("agentCanReach = %v, want the closed directory named", err)
	}
	os.Chmod(closed, 0o711)
	if err := agentCanReach(deep); err != nil {
		t.Fatalf("traversable path refused: %v", err)
	}
}

// A service that keeps crashing before everything is ready is up's error,
// with its last lines and the likely cause; an optional oneshot's failure
// is a note.
func TestJudgeCrashLoop(t *testing.T) {
	out := &sink{w: new(strings.Builder)}
	w := out.writer("")
	w.Write([]byte("[init] relay started pid=7\n[relay] open /root/state/bin/slapenir: permission denied\n[agent] unrelated\n[init] relay exited code=1, restarting in 0s\n"))
	waiting, notes, err := judge([]supervise.ServiceStatus{
		{Name: "enforce", Kind: "oneshot", State: "done", Required: true},
		{Name: "ollama-verify", Kind: "oneshot", State: "failed", LastExit: "exited code=1"},
		// Caught in the instant between two restarts: up, not backoff.
		{Name: "relay", Kind: "longrun", State: "up", Required: true, Restarts: 2, LastExit: "exited code=1"},
	}, out)
	if err == nil {
		t.Fatalf("no error; waiting %v notes %v", waiting, notes)
	}
	for _, want := range []string{"relay keeps crashing (2 restarts, last exit: exited code=1)", "permission denied", "likely cause: a file or directory", "[init] relay exited code=1"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q:\n%v", want, err)
		}
	}
	if strings.Contains(err.Error(), "unrelated") {
		t.Errorf("error holds another service's lines:\n%v", err)
	}
	waiting, notes, err = judge([]supervise.ServiceStatus{
		{Name: "ollama-verify", Kind: "oneshot", State: "failed", LastExit: "exited code=1"},
		{Name: "relay", Kind: "longrun", State: "starting", Required: true},
	}, out)
	if err != nil || len(notes) != 1 || len(waiting) != 1 || waiting[0] != "relay (starting)" {
		t.Fatalf("waiting %v notes %v err %v", waiting, notes, err)
	}
	// A required service that is down without crash-looping is named by
	// its state.
	_, _, err = judge([]supervise.ServiceStatus{
		{Name: "relay", Kind: "longrun", State: "down", Required: true, LastExit: "exited code=1"},
	}, out)
	if err == nil || !strings.Contains(err.Error(), "relay is down (0 restart(s), last exit: exited code=1) before everything was ready") {
		t.Fatalf("a required service down: %v", err)
	}
}

// What the caller did not set comes from the environment it gave (the
// seed's variables, the root .env included), then up's defaults.
func TestDefaultsReadTheEnvironment(t *testing.T) {
	o := Options{Env: []string{"OLLAMA_HOST=h:1", "OLLAMA_MODEL=m", "STEP_CA_URL=https://ca:9000", "STEP_PASSWORD_FILE=/p", "STEP_FINGERPRINT=ab"},
		CA: StepCA{PasswordFile: "/given"}}
	o.defaults()
	if o.OllamaHost != "h:1" || o.Model != "m" || o.CA.URL != "https://ca:9000" || o.CA.PasswordFile != "/given" ||
		o.CA.Fingerprint != "ab" || o.CA.Provisioner != "agent-provisioner" {
		t.Errorf("defaults: %+v", o)
	}
}

// TestJudgeWaitsForAServiceToSettle: a long-running service caught "up"
// for a moment between crashes is not ready until it has stayed up.
func TestJudgeWaitsForAServiceToSettle(t *testing.T) {
	out := &sink{w: new(strings.Builder)}
	waiting, _, err := judge([]supervise.ServiceStatus{
		{Name: "crasher", Kind: "longrun", State: "up", Required: true, Restarts: 1, Uptime: 0.002},
	}, out)
	if err != nil || len(waiting) != 1 || waiting[0] != "crasher (up)" {
		t.Fatalf("a service up for 2 ms: waiting %v, err %v", waiting, err)
	}
	waiting, _, err = judge([]supervise.ServiceStatus{
		{Name: "relay", Kind: "longrun", State: "up", Required: true, Uptime: 1.5},
	}, out)
	if err != nil || len(waiting) != 0 {
		t.Fatalf("a service up for 1.5 s: waiting %v, err %v", waiting, err)
	}
}

// As root, `slapenir proxy` keeps its default state directory 0700 (its CA
// keys); up's default must not lie below it, or the agent (uid 1000) cannot
// reach its binary, certificates and workspace and every plain `slapenir up`
// fails because of the proxy's default.
func TestDefaultStateDirBesideTheProxys(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("checks what uid 1000 may enter; needs root to make directories it may not")
	}
	// Not t.TempDir: its parent is closed to others.
	base, err := os.MkdirTemp("", "defaults-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(base) })
	os.Chmod(base, 0o755)
	proxyState := filepath.Join(base, "slapenir")
	t.Setenv("SLAPENIR_STATE_DIR", proxyState)             // the proxy's default, here
	if err := os.MkdirAll(proxyState, 0o700); err != nil { // as slapenir proxy makes it
		t.Fatal(err)
	}
	s, err := (&Options{Env: []string{}}).openState(time.Now()) // up's default
	if err != nil {
		t.Fatal(err)
	}
	defer s.close()
	if s.path != defaultStateDir() {
		t.Fatalf("up chose %s, want its default %s", s.path, defaultStateDir())
	}
	home := filepath.Join(s.path, "agent")
	workspace := filepath.Join(home, "workspace")
	if err := agentDirs(s.path, home, filepath.Join(home, "certs"), workspace, true); err != nil {
		t.Fatal(err)
	}
	if err := agentCanReach(workspace); err != nil {
		t.Fatalf("up's default state directory %s, beside the proxy's %s (0700): %v", s.path, proxyState, err)
	}
	// Where the default itself cannot be reached, it is not the advice.
	os.Chmod(base, 0o700)
	err = agentCanReach(workspace)
	if err == nil || strings.Contains(err.Error(), "the default") {
		t.Fatalf("below a closed directory: %v, want a refusal that does not recommend the default", err)
	}
}
