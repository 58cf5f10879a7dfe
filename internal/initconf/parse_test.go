package initconf

import (
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
	want := "enforce certs-bootstrap ca-bundle relay ollama-verify certs-renew agent"
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
	if a := f.Service("agent"); a.User != "" || a.StopGrace != 3*time.Second || a.StopSignal != syscall.SIGTERM {
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
		web.StopSignal != syscall.SIGINT || web.StopGrace != time.Second || !web.ForwardHUP {
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
		{"missing command", "services:\n  a:\n    type: oneshot\n", []string{`t.yaml:2: service "a": command is missing`}},
		{"bad type", "services:\n  a:\n    type: daemon\n    command: x\n", []string{`t.yaml:3: service "a": type "daemon" is unknown`}},
		{"bad duration", "services:\n  a:\n    command: x\n    stop_grace: soon\n", []string{`t.yaml:4: service "a": stop_grace "soon" is not a duration`}},
		{"unknown dependency", "services:\n  a:\n    command: x\n    depends_on: [b]\n", []string{`t.yaml:2: service "a" depends on "b", which is not defined`}},
		{"cycle", "services:\n  a:\n    command: x\n    depends_on: [b]\n  b:\n    command: x\n    depends_on: [a]\n", []string{`t.yaml:2: dependency cycle: a → b → a`}},
		{"two probes", "services:\n  a:\n    command: x\n    ready: {tcp: ':1', http: 'http://x'}\n", []string{`t.yaml:4: service "a": ready: give exactly one of`}},
		{"ready on oneshot", "services:\n  a:\n    type: oneshot\n    command: x\n    ready: {tcp: ':1'}\n", []string{`t.yaml:2: service "a": ready applies to longrun services only`}},
		{"bad signal", "services:\n  a:\n    command: x\n    stop_signal: BOOM\n", []string{`t.yaml:4: service "a": stop_signal "BOOM" is not a supported signal`}},
		{"bad bool", "services:\n  a:\n    command: x\n    privileged: maybe\n", []string{`t.yaml:4: service "a": privileged "maybe" must be true or false`}},
		{"reserved name", "services:\n  init:\n    command: x\n", []string{`t.yaml:2: service name "init" is reserved`}},
		{"yaml syntax", "services:\n  a: [\n", []string{`t.yaml: yaml: line`}},
		{"top-level typo", "servces:\n  a:\n    command: x\n", []string{`t.yaml:1: unknown key "servces" (did you mean "services"?)`}},
		{"repeated key", "services:\n  a:\n    command: x\n    command: y\n", []string{`t.yaml:4: key "command" in services.a is given twice (first on line 3)`}},
		{"typo in restart", "services:\n  a:\n    command: x\n    restart: {polcy: always}\n", []string{`t.yaml:4: unknown key "services.a.restart.polcy" (did you mean "policy"?)`}},
		{"several at once", "services:\n  a:\n    command: x\n    user: [1]\n  b:\n    comand: y\n", []string{
			`t.yaml:4: service "a": user must be a single value, not a list`,
			`t.yaml:6: unknown key "services.b.comand" (did you mean "command"?)`,
			`t.yaml:5: service "b": command is missing`,
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
