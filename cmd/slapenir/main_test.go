package main

import (
	"testing"
)

// TestDispatch: subcommands by name, the seed's script names by argv[0], and
// a usage error (exit 2) for anything else.
func TestDispatch(t *testing.T) {
	var got []string
	register("test-echo", "records its arguments (test only)", func(args []string) int {
		got = args
		return 7
	})
	defer delete(commands, "test-echo")
	registerAlias("test-alias", "test-echo", "--from-alias")
	defer delete(aliases, "test-alias")

	if code := dispatch("slapenir", []string{"test-echo", "a"}); code != 7 || len(got) != 1 || got[0] != "a" {
		t.Fatalf("by name: exit %d, args %q", code, got)
	}
	if code := dispatch("test-alias", []string{"b"}); code != 7 || len(got) != 2 || got[0] != "--from-alias" || got[1] != "b" {
		t.Fatalf("by program name: exit %d, args %q", code, got)
	}
	if code := dispatch("slapenir", []string{"no-such-command"}); code != 2 {
		t.Fatalf("unknown command: exit %d, want 2", code)
	}
	if code := dispatch("slapenir", nil); code != 2 {
		t.Fatalf("no command: exit %d, want 2", code)
	}
	for _, alias := range []string{"bootstrap-certs", "ollama-verify", "ollama-proxy-helper", "aider-ollama"} {
		if _, ok := aliases[alias]; !ok {
			t.Errorf("the seed's script name %q is not registered", alias)
		}
	}
}
