package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// shellEnv is this test's environment for slapenir shell on the host: not
// inside an agent, no state directory of its own, and a bash first on PATH
// that says when it runs.
func shellEnv(t *testing.T, extra ...string) []string {
	t.Helper()
	// Not t.TempDir: as root the shell drops to uid 1000, which may not
	// enter t.TempDir's parent to run the fake.
	fake, err := os.MkdirTemp("", "fakebash-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(fake) })
	os.Chmod(fake, 0o755)
	if err := os.WriteFile(filepath.Join(fake, "bash"), []byte("#!/bin/sh\necho BASH STARTED \"$@\"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "SLAPENIR_AGENT_SHELL=") && !strings.HasPrefix(kv, "SLAPENIR_STATE_DIR=") && !strings.HasPrefix(kv, "PATH=") {
			env = append(env, kv)
		}
	}
	return append(env, append([]string{"PATH=" + fake + ":" + os.Getenv("PATH")}, extra...)...)
}

// On the host with no up running, slapenir shell refuses, naming where it
// looked: a shell there would be on the host's network with no proxy and
// look like the agent's.
func TestShellWithoutUpRefuses(t *testing.T) {
	bin := buildBinary(t)
	for _, tc := range []struct {
		name string
		args []string
		env  func(dir string) []string
	}{
		{"--state-dir", nil, nil},
		{"$SLAPENIR_STATE_DIR", nil, func(dir string) []string { return []string{"SLAPENIR_STATE_DIR=" + dir} }},
		{"--state-dir with bash's args", []string{"-c", "true"}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			args := []string{"shell"}
			var extra []string
			if tc.env == nil {
				args = append(args, "--state-dir", dir)
			} else {
				extra = tc.env(dir)
			}
			cmd := exec.Command(bin, append(args, tc.args...)...)
			cmd.Env = shellEnv(t, extra...)
			var stdout, stderr bytes.Buffer
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			err := cmd.Run()
			if err == nil {
				t.Fatalf("exit 0 with no up running; stdout %q stderr %q", stdout.String(), stderr.String())
			}
			if strings.Contains(stdout.String(), "BASH STARTED") {
				t.Fatalf("a shell was started with no up running: %q", stdout.String())
			}
			for _, want := range []string{"no slapenir up runs on the state directory " + dir, "slapenir up first", "--state-dir"} {
				if !strings.Contains(stderr.String(), want) {
					t.Errorf("stderr %q does not say %q", stderr.String(), want)
				}
			}
		})
	}
}

// slapenir shell -h and --help are ours, not bash's.
func TestShellHelpIsOurs(t *testing.T) {
	bin := buildBinary(t)
	for _, where := range []string{"SLAPENIR_STATE_DIR=" + t.TempDir(), "SLAPENIR_AGENT_SHELL=1"} { // the host, the agent
		for _, flag := range []string{"-h", "--help"} {
			cmd := exec.Command(bin, "shell", flag)
			cmd.Env = shellEnv(t, where)
			out, err := cmd.CombinedOutput()
			if err != nil || !strings.HasPrefix(string(out), "usage: slapenir shell") || strings.Contains(string(out), "BASH STARTED") {
				t.Errorf("%s slapenir shell %s: %v\n%s", where, flag, err, out)
			}
		}
	}
}
