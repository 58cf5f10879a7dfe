package initconf

import (
	"fmt"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestShippedServiceFileParses(t *testing.T) {
	f, err := Load("../../agent/agent-services.yaml")
	if err != nil {
		t.Fatalf("shipped service file: %v", err)
	}
	var names []string
	for _, s := range f.Services {
		names = append(names, s.Name)
	}
	want := "enforce certs-bootstrap ca-bundle placeholders relay ollama-verify certs-renew agent"
	if got := strings.Join(names, " "); got != want {
		t.Errorf("services = %q, want %q", got, want)
	}
	for name, argv := range map[string]string{
		"certs-bootstrap": "slapenir certs bootstrap",
		"enforce":         "slapenir enforce",
		"relay":           "slapenir relay",
		"ollama-verify":   "slapenir ollama-verify",
		"certs-renew":     "slapenir certs renew --daemon",
		"agent":           "slapenir agent",
	} {
		if got := strings.Join(f.Service(name).Command, " "); got != argv {
			t.Errorf("%s command = %q, want %q", name, got, argv)
		}
	}
	if b := f.Service("certs-bootstrap"); strings.Join(b.DependsOn, " ") != "enforce" {
		t.Errorf("certs-bootstrap depends on %q, want enforce (rules installed mid-enrollment can burn the one-time token)", b.DependsOn)
	}
	if e := f.Service("enforce"); !e.Privileged || e.User != "root" {
		t.Errorf("enforce: privileged=%v user=%q, want privileged root", e.Privileged, e.User)
	}
	if v := f.Service("ollama-verify"); v.Required || v.Kind != Oneshot {
		t.Errorf("ollama-verify must be an optional oneshot, got kind=%s required=%v", v.Kind, v.Required)
	}
	if a := f.Service("agent"); a.User != "" || a.StopGrace != 3*time.Second || a.StopSignal != Signal(syscall.SIGTERM) {
		t.Errorf("agent defaults: user=%q grace=%s signal=%v", a.User, a.StopGrace, a.StopSignal)
	}
}

func TestParseFullService(t *testing.T) {
	f, err := Parse("t.yaml", []byte(`
services:
  setup:
    type: oneshot
    command: "sh -c true"
    required: false
    timeout: 5s
  web:
    command: [srv, --port, "8080"]
    depends_on: setup
    user: "1000:1000"
    group: "1000"
    groups: [27, "100"]
    env: {A: "1", B: two}
    workdir: /tmp
    ready: {http: "http://127.0.0.1:8080/health", timeout: 2s, interval: 10ms}
    stop_signal: SIGINT
    stop_grace: 1s
    forward_hup: yes
    restart: {policy: always, backoff_start: 10ms, backoff_max: 1s, reset_after: 2s}
`))
	if err != nil {
		t.Fatal(err)
	}
	setup, web := f.Service("setup"), f.Service("web")
	if setup.Kind != Oneshot || setup.Required || setup.Timeout != 5*time.Second || strings.Join(setup.Command, "|") != "sh|-c|true" {
		t.Errorf("setup parsed wrong: %+v", setup)
	}
	if web.Kind != Longrun || web.Line != 8 || strings.Join(web.DependsOn, ",") != "setup" ||
		web.User != "1000:1000" || strings.Join(web.Groups, ",") != "27,100" ||
		strings.Join(web.Env, ",") != "A=1,B=two" || web.Dir != "/tmp" ||
		web.StopSignal != Signal(syscall.SIGINT) || web.StopGrace != time.Second || !web.ForwardHUP {
		t.Errorf("web parsed wrong: %+v", web)
	}
	if r := web.Ready; r == nil || r.HTTP != "http://127.0.0.1:8080/health" || r.Timeout != 2*time.Second || r.Interval != 10*time.Millisecond {
		t.Errorf("web ready parsed wrong: %+v", r)
	}
	if r := web.Restart; r.Mode != RestartAlways || r.BackoffStart != 10*time.Millisecond || r.BackoffMax != time.Second || r.ResetAfter != 2*time.Second {
		t.Errorf("web restart parsed wrong: %+v", r)
	}
}

func TestParseErrorsCarryLineNumbers(t *testing.T) {
	for _, tc := range []struct {
		name, yaml string
		want       []string
	}{
		{"unknown key", "services:\n  a:\n    command: x\n    comand: y\n", []string{`t.yaml:4: unknown key "services.a.comand" (did you mean "command"?)`}},
		{"missing command", "services:\n  a:\n    type: oneshot\n", []string{`t.yaml:2: services.a.command: missing (every service names the program it runs)`}},
		{"bad type", "services:\n  a:\n    type: daemon\n    command: x\n", []string{`t.yaml:3: services.a.type: "daemon" is not "oneshot" or "longrun"`}},
		{"bad duration", "services:\n  a:\n    command: x\n    stop_grace: soon\n", []string{`t.yaml:4: services.a.stop_grace: want a duration such as 30s or 5m, got "soon"`}},
		{"unknown dependency", "services:\n  a:\n    command: x\n    depends_on: [b]\n", []string{`t.yaml:4: services.a.depends_on: "b" is not a service defined here`}},
		{"cycle", "services:\n  a:\n    command: x\n    depends_on: [b]\n  b:\n    command: x\n    depends_on: [a]\n", []string{`t.yaml:4: services.a.depends_on: dependency cycle: a → b → a`}},
		{"two probes", "services:\n  a:\n    command: x\n    ready: {tcp: ':1', http: 'http://x'}\n", []string{`t.yaml:4: services.a.ready: give exactly one of tcp, http, command or notify_fd (found 2)`}},
		{"ready on oneshot", "services:\n  a:\n    type: oneshot\n    command: x\n    ready: {tcp: ':1'}\n", []string{`t.yaml:5: services.a.ready: applies to longrun services only`}},
		{"bad signal", "services:\n  a:\n    command: x\n    stop_signal: BOOM\n", []string{`t.yaml:4: services.a.stop_signal: "BOOM" is not "TERM" or "INT" or "HUP" or "QUIT" or "KILL" or "USR1" or "USR2"`}},
		{"bad bool", "services:\n  a:\n    command: x\n    privileged: maybe\n", []string{`t.yaml:4: services.a.privileged: want true or false, got "maybe"`}},
		{"reserved name", "services:\n  init:\n    command: x\n", []string{`t.yaml:2: services: service name "init" is reserved`}},
		{"yaml syntax", "services:\n  a: [\n", []string{`t.yaml:2: YAML syntax error: did not find expected node content`}},
		{"top-level typo", "servces:\n  a:\n    command: x\n", []string{`t.yaml:1: unknown key "servces" (did you mean "services"?)`}},
		{"repeated key", "services:\n  a:\n    command: x\n    command: y\n", []string{`t.yaml:4: key "command" in services.a is given twice (first on line 3)`}},
		{"typo in a value", "services:\n  a:\n    command: x\n    type: oneshto\n    stop_signal: TERN\n", []string{
			`t.yaml:4: services.a.type: "oneshto" is not "oneshot" or "longrun" (did you mean "oneshot"?)`,
			`t.yaml:5: services.a.stop_signal: "TERN" is not "TERM" or "INT" or "HUP" or "QUIT" or "KILL" or "USR1" or "USR2" (did you mean "TERM"?)`,
		}},
		{"typo in restart", "services:\n  a:\n    command: x\n    restart: {polcy: always}\n", []string{`t.yaml:4: unknown key "services.a.restart.polcy" (did you mean "policy"?)`}},
		{"notify_fd out of range", "services:\n  a:\n    command: x\n    ready:\n      notify_fd: 0\n", []string{`t.yaml:5: services.a.ready.notify_fd: want a file descriptor number from 3 to 64, got 0`}},
		{"ready http not a URL", "services:\n  a:\n    command: x\n    ready:\n      http: localhost:80\n", []string{`t.yaml:5: services.a.ready.http: want an http:// or https:// URL, got "localhost:80"`}},
		{"empty command", "services:\n  a:\n    command: \"  \"\n", []string{`t.yaml:3: services.a.command: empty: name the program to run`}},
		{"mapping in a command", "services:\n  a:\n    command: [x, {y: z}]\n", []string{`t.yaml:3: services.a.command: want a name or a list of them, got a mapping in the list`}},
		{"bad variable name", "services:\n  a:\n    command: x\n    env:\n      OK: \"1\"\n      1BAD: \"2\"\n", []string{`t.yaml:6: services.a.env: "1BAD" is not a valid variable name`}},
		{"backoff shrinks", "services:\n  a:\n    command: x\n    restart: {backoff_start: 2s, backoff_max: 1s}\n", []string{`t.yaml:4: services.a.restart.backoff_max: 1s is below backoff_start 2s`}},
		{"negative grace", "services:\n  a:\n    command: x\n    stop_grace: -1s\n", []string{`t.yaml:4: services.a.stop_grace: -1s must not be negative`}},
		{"service twice", "services:\n  a:\n    command: x\n  a:\n    command: y\n", []string{`t.yaml:4: key "a" in services is given twice (first on line 2)`}},
		{"bad service name", "services:\n  Web:\n    command: x\n", []string{`t.yaml:2: services: service name "Web" is invalid`}},
		{"no services", "services: {}\n", []string{`t.yaml:1: no services defined`}},
		{"services null", "services:\n", []string{`t.yaml:1: no services defined`}},
		{"services not a mapping", "services: [a, b]\n", []string{`t.yaml:1: want a mapping of keys in services, got a list`}},
		{"several at once", "services:\n  a:\n    command: x\n    user: [1]\n  b:\n    comand: y\n", []string{
			`t.yaml:4: services.a.user: want a string, got a list`,
			`t.yaml:6: unknown key "services.b.comand" (did you mean "command"?)`,
			`t.yaml:5: services.b.command: missing`,
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse("t.yaml", []byte(tc.yaml))
			if err == nil {
				t.Fatalf("no error for:\n%s", tc.yaml)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q\ndoes not contain %q", err, w)
				}
			}
		})
	}
}

// TestParseFollowsAnchors: an alias (*name) may stand for a whole service,
// a command, one item of a list, a list or a mapping, as YAML allows.
func TestParseFollowsAnchors(t *testing.T) {
	f, err := Parse("a.yaml", []byte(`services:
  base: &svc
    command: [&prog srv, --x]
    depends_on: &deps [db]
    env: &env {A: &one "1"}
  db: {command: *prog}
  web: *svc
  other:
    command: [*prog, *one]
    groups: *deps
    env: *env
    depends_on: db
`))
	if err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]string{
		"base":  `[srv --x] [db] [A=1] []`,
		"db":    `[srv] [] [] []`,
		"web":   `[srv --x] [db] [A=1] []`,
		"other": `[srv 1] [db] [A=1] [db]`,
	} {
		s := f.Service(name)
		if got := fmt.Sprint(s.Command, " ", s.DependsOn, " ", s.Env, " ", s.Groups); got != want {
			t.Errorf("%s: command, depends_on, env, groups = %s, want %s", name, got, want)
		}
	}
}
