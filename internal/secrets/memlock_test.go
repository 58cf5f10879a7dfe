package secrets

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/slapenir/slapenir/internal/redact"
	"golang.org/x/sys/unix"
)

// The memlock tests run this test binary again as a helper process with a
// low RLIMIT_MEMLOCK and without CAP_IPC_LOCK (as user nobody), because
// root with CAP_IPC_LOCK ignores the limit, and because memguard's panic
// on a failed mlock would take the whole test binary down.
const helperEnv = "SLAPENIR_SECRETS_MEMLOCK_HELPER"

func TestMain(m *testing.M) {
	if os.Getenv(helperEnv) != "" {
		os.Exit(memlockHelper())
	}
	code := m.Run()
	if helperPath != "" {
		os.RemoveAll(filepath.Dir(helperPath))
	}
	os.Exit(code)
}

// helperTimeout bounds a helper run. It matters: when memguard's mlock
// fails while it holds its key (Coffer.View), its Panic deadlocks on that
// same key instead of panicking, so an undercounted budget shows up as a
// hang.
const helperTimeout = time.Minute

// helperValues are the credentials the helper loads, from its environment.
var helperValues = map[string]string{
	"SLAPENIR_T_GITHUB": githubValue,
	"SLAPENIR_T_OPENAI": openaiValue,
	"SLAPENIR_T_SLACK":  slackValue,
}

func helperConfig(require bool) Config {
	return Config{RequireLockedMemory: require, Credentials: []CredentialConfig{
		{Name: "github", Env: "SLAPENIR_T_GITHUB", Hosts: []string{"github.com"}},
		{Name: "openai", Env: "SLAPENIR_T_OPENAI", Hosts: []string{"api.openai.com"}},
		{Name: "slack", Env: "SLAPENIR_T_SLACK", Hosts: []string{"slack.com"}},
	}}
}

// memlockHelper sets RLIMIT_MEMLOCK to the helper's argument, opens the
// vault, uses it the way the proxy does, and reports on stdout.
func memlockHelper() int {
	limit, err := strconv.ParseUint(os.Getenv(helperEnv), 10, 64)
	if err != nil {
		fmt.Println("bad limit:", err)
		return 2
	}
	if err := unix.Setrlimit(unix.RLIMIT_MEMLOCK, &unix.Rlimit{Cur: limit, Max: limit}); err != nil {
		fmt.Println("setrlimit:", err)
		return 2
	}
	st, err := readMemlock()
	if err != nil || st.capIPCLock {
		fmt.Println("the helper still has CAP_IPC_LOCK or cannot tell:", err)
		return 2
	}
	// No credentials: nothing to lock, so neither a warning nor a refusal.
	empty, err := Open(Config{RequireLockedMemory: true}, Options{})
	if err != nil {
		fmt.Println("open without credentials:", err)
		return 3
	}
	if _, err := empty.NewInjector(); err != nil {
		fmt.Println("injector without credentials:", err)
		return 4
	}
	empty.Close()
	v, err := Open(helperConfig(os.Getenv("REQUIRE") == "1"), Options{})
	if err != nil {
		fmt.Println("open error:", err)
		return 3
	}
	fmt.Printf("locked=%v\n", v.Locked())
	for range 3 {
		inj, err := v.NewInjector()
		if err != nil {
			fmt.Println("injector:", err)
			return 4
		}
		out, _ := inj.Replace([]byte("DUMMY_GITHUB DUMMY_SLACK"), v.Allow("github.com", 443, true))
		if string(out) != githubValue+" DUMMY_SLACK" {
			fmt.Println("injection went wrong")
			return 4
		}
		red, err := v.NewRedactor(redact.Options{})
		if err != nil {
			fmt.Println("redactor:", err)
			return 4
		}
		if red, n := red.Redact([]byte(openaiValue)); n != 1 || bytes.Contains(red, []byte(openaiValue)) {
			fmt.Println("redaction went wrong")
			return 4
		}
	}
	v.Close()
	fmt.Println("done")
	return 0
}

// runHelper runs the helper as nobody with RLIMIT_MEMLOCK at limit bytes.
func runHelper(t *testing.T, limit int, require bool) (stdout, stderr string, code int) {
	t.Helper()
	exe := helperBinary(t)
	ctx, cancel := context.WithTimeout(context.Background(), helperTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, exe, "-test.run=^$")
	cmd.Env = []string{helperEnv + "=" + strconv.Itoa(limit), "REQUIRE=" + map[bool]string{true: "1", false: "0"}[require]}
	for k, v := range helperValues {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	if ctx.Err() != nil {
		t.Fatalf("the helper (RLIMIT_MEMLOCK %d) did not finish within %v: memguard ran out of locked memory and hung; stdout %q, stderr %q", limit, helperTimeout, out.String(), errb.String())
	}
	code = cmd.ProcessState.ExitCode()
	if err != nil && code < 0 {
		t.Fatalf("running the helper: %v", err)
	}
	return out.String(), errb.String(), code
}

var helperPath string

// helperBinary copies this test binary where user nobody can run it.
func helperBinary(t *testing.T) string {
	t.Helper()
	if helperPath != "" {
		return helperPath
	}
	if os.Geteuid() != 0 {
		t.Skip("needs root: the helper runs as user nobody so that CAP_IPC_LOCK is gone and RLIMIT_MEMLOCK applies")
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	dir, err := os.MkdirTemp("", "secrets-memlock-")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	src, err := os.Open(self)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	p := filepath.Join(dir, "secrets.test")
	dst, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE, 0o755)
	if err != nil {
		t.Fatal(err)
	}
	_, err = io.Copy(dst, src)
	if cerr := dst.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		t.Fatal(err)
	}
	helperPath = p
	return p
}

// helperLockedPages is what the helper's vault needs locked.
func helperLockedPages() int {
	var lengths []int
	for _, v := range helperValues {
		lengths = append(lengths, len(v))
	}
	return lockedPagesNeeded(lengths)
}

func TestMemlockTooLowWarnsAndContinues(t *testing.T) {
	for _, limit := range []int{0, (helperLockedPages() - 1) * pageSize} {
		stdout, stderr, code := runHelper(t, limit, false)
		if code != 0 || !strings.Contains(stdout, "locked=false\n") || !strings.HasSuffix(stdout, "done\n") {
			t.Errorf("limit %d: exit %d, stdout %q, stderr %q; want a working vault in unlocked memory", limit, code, stdout, stderr)
		}
		want := fmt.Sprintf("secrets: WARNING: memory cannot be locked: RLIMIT_MEMLOCK is %d bytes", limit)
		if !strings.Contains(stderr, want) || !strings.Contains(stderr, "--ulimit memlock=-1") {
			t.Errorf("limit %d: stderr %q does not warn %q with the fix", limit, stderr, want)
		}
		checkNoValue(t, stdout+stderr)
	}
}

func TestMemlockTooLowRefusedWhenRequired(t *testing.T) {
	stdout, stderr, code := runHelper(t, 0, true)
	if code != 3 || !strings.Contains(stdout, "open error: secrets: memory cannot be locked: RLIMIT_MEMLOCK is 0 bytes") ||
		!strings.Contains(stdout, "secrets.require_locked_memory is true") || !strings.Contains(stdout, "--ulimit memlock=-1") {
		t.Errorf("exit %d, stdout %q, stderr %q; want a clear refusal", code, stdout, stderr)
	}
	if strings.Contains(stderr, "panic") {
		t.Errorf("the helper panicked: %s", stderr)
	}
	checkNoValue(t, stdout+stderr)
}

// With exactly the computed number of pages memguard is used and never runs
// out: if lockedPagesNeeded undercounted, memguard would panic here.
func TestMemlockJustEnoughUsesMemguard(t *testing.T) {
	stdout, stderr, code := runHelper(t, helperLockedPages()*pageSize, true)
	if code != 0 || !strings.Contains(stdout, "locked=true\n") || !strings.HasSuffix(stdout, "done\n") {
		t.Errorf("exit %d, stdout %q, stderr %q; want a working vault in locked memory", code, stdout, stderr)
	}
}

func checkNoValue(t *testing.T, out string) {
	t.Helper()
	for _, v := range helperValues {
		if strings.Contains(out, v) {
			t.Errorf("output shows a value: %q", out)
		}
	}
}
