package main

import (
	"bytes"
	"io"
	"strings"
	"testing"
)

// TestDispatch: subcommands by name, the seed's script names by argv[0],
// each command writing to the writers it is given, and one usage style for
// the binary and its command groups: asked for, on stdout with exit 0; for
// a missing or unknown name, on stderr with exit 2.
func TestDispatch(t *testing.T) {
	var got []string
	saved := commands
	commands = append(append([]command{}, commands...), command{"test-echo", "records its arguments (test only)", func(args []string, stdout, _ io.Writer) int {
		got = args
		io.WriteString(stdout, "echo")
		return 7
	}})
	defer func() { commands = saved }()
	aliases["test-alias"] = []string{"test-echo", "--from-alias"}
	defer delete(aliases, "test-alias")

	run := func(prog string, args ...string) (int, string, string) {
		var out, errb bytes.Buffer
		code := dispatch(prog, args, &out, &errb)
		return code, out.String(), errb.String()
	}
	if code, out, _ := run("slapenir", "test-echo", "a"); code != 7 || len(got) != 1 || got[0] != "a" || out != "echo" {
		t.Fatalf("by name: exit %d, args %q, stdout %q", code, got, out)
	}
	if code, _, _ := run("test-alias", "b"); code != 7 || len(got) != 2 || got[0] != "--from-alias" || got[1] != "b" {
		t.Fatalf("by program name: exit %d, args %q", code, got)
	}
	if code, out, errs := run("slapenir", "no-such-command"); code != 2 || out != "" || !strings.Contains(errs, `unknown command "no-such-command"`) {
		t.Fatalf("unknown command: exit %d, %q %q", code, out, errs)
	}
	if code, _, errs := run("slapenir"); code != 2 || !strings.Contains(errs, "usage: slapenir <command>") {
		t.Fatalf("no command: exit %d, %q", code, errs)
	}
	code, out, _ := run("slapenir", "--help")
	if code != 0 || !strings.Contains(out, "  proxy ") || !strings.Contains(out, "bootstrap-certs") {
		t.Fatalf("--help: exit %d\n%s", code, out)
	}
	for _, group := range []string{"certs", "audit", "policy", "ca"} {
		if code, out, _ := run("slapenir", group, "-h"); code != 0 || !strings.Contains(out, "usage: slapenir "+group+" <command>") {
			t.Errorf("%s -h: exit %d\n%s", group, code, out)
		}
		if code, _, errs := run("slapenir", group, "nope"); code != 2 || !strings.Contains(errs, "unknown command") {
			t.Errorf("%s nope: exit %d %q", group, code, errs)
		}
	}
	if code, out, _ := run("slapenir", "version"); code != 0 || out == "" {
		t.Errorf("version: exit %d %q", code, out)
	}
	for _, alias := range []string{"bootstrap-certs", "ollama-verify", "ollama-proxy-helper", "aider-ollama"} {
		if _, ok := aliases[alias]; !ok {
			t.Errorf("the seed's script name %q is not registered", alias)
		}
	}
	seen := map[string]bool{}
	for _, c := range commands {
		if seen[c.name] {
			t.Errorf("command %s is in the table twice", c.name)
		}
		seen[c.name] = true
	}
}
