package config

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/slapenir/slapenir/internal/policy"
	"go.yaml.in/yaml/v3"
)

func TestDefaultIsValidAndComplete(t *testing.T) {
	c := Default()
	if err := c.Validate(); err != nil {
		t.Fatalf("Default() does not validate: %v", err)
	}
	if c.Listen != ":3000" || c.Policy.Default != "allow" || c.Policy.Mode != "enforce" ||
		!reflect.DeepEqual(c.Policy.ConnectPorts, []int{443}) ||
		!reflect.DeepEqual(c.Policy.PrivateAllow, []string{"host.docker.internal:11434"}) ||
		!c.Policy.TelemetryOn() || !c.Audit.Stdout || c.Audit.MaxSizeMB != 100 || c.Audit.MaxBackups != 5 ||
		c.Limits.RatePerSecond != 100 || c.Limits.RateBurst != 200 || c.Limits.MaxTunnels != 512 ||
		c.Limits.MaxHeaderBytes != 32768 || c.Limits.ReadHeaderTimeout.D() != 30*time.Second ||
		c.Limits.IdleTimeout.D() != 5*time.Minute || c.Limits.ShutdownGrace.D() != 10*time.Second {
		t.Errorf("Default() = %+v, not the documented defaults", c)
	}
	// Callers may change what Default returns without changing the next one.
	c.Policy.ConnectPorts[0] = 1
	if Default().Policy.ConnectPorts[0] != 443 {
		t.Error("Default() shares its slices between calls")
	}
}

func TestTelemetryHostsAreValidGlobs(t *testing.T) {
	c := Default()
	c.Policy.Deny = policy.Hosts(policy.TelemetryHosts...)
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	if len(policy.TelemetryHosts) != 9 {
		t.Errorf("TelemetryHosts has %d entries, want the original's 9", len(policy.TelemetryHosts))
	}
}

func TestExampleFileLoads(t *testing.T) {
	c, err := Load(filepath.Join("..", "..", "configs", "proxy.example.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if c.Policy.Default != "deny" || len(c.Policy.Allow) != 8 || c.Audit.File == "" || c.Audit.Stdout {
		t.Errorf("example loaded as %+v", c)
	}
}

func TestParseOverlaysDefaults(t *testing.T) {
	c, err := Parse("p.yaml", []byte(`
listen: 127.0.0.1:0
policy:
  allow: ["*.github.com", api.openai.com:443]
  private_allow: []
  telemetry_deny: false
  deny:
limits:
  idle_timeout: 90s
  rate_per_second: 0
`))
	if err != nil {
		t.Fatal(err)
	}
	want := Default()
	want.Listen = "127.0.0.1:0"
	want.Policy.Allow = policy.Hosts("*.github.com", "api.openai.com:443")
	want.Policy.PrivateAllow = []string{}
	off := false
	want.Policy.TelemetryDeny = &off
	want.Limits.IdleTimeout = Duration(90 * time.Second)
	want.Limits.RatePerSecond = 0
	c.name, c.lines = "", nil
	if !reflect.DeepEqual(c, want) {
		t.Errorf("Parse gave\n%+v\nwant\n%+v", c, want)
	}
	if c.Policy.TelemetryOn() {
		t.Error("telemetry_deny: false left the telemetry list on")
	}
}

func TestParseEmptyFileIsDefault(t *testing.T) {
	for _, in := range []string{"", "# only a comment\n", "---\n"} {
		c, err := Parse("empty.yaml", []byte(in))
		if err != nil {
			t.Fatalf("Parse(%q): %v", in, err)
		}
		if c.Listen != ":3000" {
			t.Errorf("Parse(%q).Listen = %q", in, c.Listen)
		}
	}
}

// TestProblems checks that each kind of mistake is reported with its line
// and a message that names the key, and that all problems come out at once.
func TestProblems(t *testing.T) {
	cases := []struct {
		name string
		in   string
		want []string // "line: substring", in order
	}{
		{"unknown top key", "listen: :3000\npolcy:\n  default: deny\n",
			[]string{`2: unknown key "polcy" (did you mean "policy"?)`}},
		{"unknown nested key", "policy:\n  default: deny\n  alow: [x]\n",
			[]string{`3: unknown key "policy.alow" (did you mean "allow"?)`}},
		{"misspelt credential option", "secrets:\n  credentials:\n    - name: ollama\n      env: T\n      hosts: [127.0.0.1]\n      plaintxt_http: true\n",
			[]string{`6: unknown key "secrets.credentials[0].plaintxt_http" (did you mean "plaintext_http"?)`}},
		{"credential option not a bool", "secrets:\n  credentials:\n    - name: ollama\n      env: T\n      hosts: [127.0.0.1]\n      plaintext_http: sometimes\n",
			[]string{`6: secrets.credentials[0].plaintext_http`}},
		{"unknown key far from any", "zzzzzz: 1\n",
			[]string{`1: unknown key "zzzzzz" (known keys at the top level: listen, policy, audit, limits, tls, secrets, intercept, roles, default_role, dlp, metrics, state_dir)`}},
		{"duplicate key", "audit:\n  stdout: true\n  stdout: false\n",
			[]string{`3: key "stdout" in audit is given twice (first on line 2)`}},
		{"enums", "policy:\n  default: alow\n  mode: enforcing\n",
			[]string{`2: policy.default: "alow" is not "allow" or "deny" (did you mean "allow"?)`,
				`3: policy.mode: "enforcing" is not "enforce" or "report"`}},
		{"globs", "policy:\n  allow:\n    - ok.example\n    - 'api-*.x.com'\n  deny: ['x.com:99999', 'a b']\n",
			[]string{`4: policy.allow[1]: bad host glob "api-*.x.com": "*" may only be`,
				`5: policy.deny[0]: bad host glob "x.com:99999": port "99999" out of range`,
				`5: policy.deny[1]: bad host glob "a b": contains a space`}},
		{"private_allow", "policy:\n  private_allow:\n    - 10.0.0.0/33\n    - '127.0.0.1:0'\n    - 'fd00::/8'\n    - 10.1.2.3\n    - '*.internal'\n    - 'a*'\n    - 'h:80'\n    - '[::1]:11434'\n",
			[]string{`3: policy.private_allow[0]: bad CIDR "10.0.0.0/33"`,
				`4: policy.private_allow[1]: "127.0.0.1:0": port 0 is not a port`,
				`8: policy.private_allow[5]: bad host, IP or CIDR "a*"`}},
		{"ports", "policy:\n  connect_ports: [443, 0, 70000]\n",
			[]string{`2: policy.connect_ports[1]: port 0 out of range`, `2: policy.connect_ports[2]: port 70000 out of range`}},
		{"listen", "listen: 3000\n", []string{`1: listen: "3000" is not host:port`}},
		{"listen port", "listen: ':99999'\n", []string{`1: listen: ":99999" has a bad port "99999"`}},
		{"listen host", "listen: 'a b:80'\n", []string{`1: listen: "a b:80" has a bad host "a b"`}},
		{"wrong types", "limits:\n  max_tunnels: lots\n  idle_timeout: 5\n  rate_per_second: fast\naudit:\n  stdout: maybe\n",
			[]string{`2: limits.max_tunnels: want a whole number, got "lots"`,
				`3: limits.idle_timeout: want a duration such as 30s or 5m, got "5"`,
				`4: limits.rate_per_second: want a number, got "fast"`,
				`6: audit.stdout: want true or false, got "maybe"`}},
		{"scalar for a list", "policy:\n  allow: a.com\n", []string{`2: policy.allow: want a list`}},
		{"list for a scalar", "listen: [a]\n", []string{`1: listen: want a string, got a list`}},
		{"list for a section", "policy: [1]\n", []string{`1: want a mapping of keys in policy, got a list`}},
		{"scalar for the file", "just words\n", []string{`1: want a mapping of keys at the top level, got "just words"`}},
		{"syntax on line 1", "a: b: c\n", []string{`1: YAML syntax error: mapping values are not allowed`}},
		{"syntax later", "policy:\n  allow:\n    - a\n   - b\n", []string{`4: YAML syntax error`}},
		{"syntax after a multi-line list", "policy:\n  allow: [a,\n    b]\n  deny:\n    - a\n   - b\n", []string{`6: YAML syntax error`}},
		{"unterminated flow", "listen: :1\npolicy:\n  allow: [a,\n", []string{`3: YAML syntax error`}},
		{"tab indent", "policy:\n\tdefault: deny\n", []string{`2: YAML syntax error`}},
		{"bad UTF-8", "listen: \xff\n", []string{`1: YAML syntax error`}},
		{"two documents", "listen: ':1'\n---\nlisten: ':2'\n", []string{`2: a second YAML document`}},
		{"audit off", "audit:\n  stdout: false\n  max_size_mb: 0\n  max_backups: -1\n",
			[]string{`1: audit: neither audit.file nor audit.stdout is set`, `3: audit.max_size_mb: 0 must be at least 1`, `4: audit.max_backups: -1 must not be negative`}},
		{"limits", "limits:\n  rate_per_second: -1\n  max_tunnels: 0\n  max_header_bytes: -5\n  read_header_timeout: 0s\n  idle_timeout: -1s\n  shutdown_grace: -1s\n",
			[]string{`2: limits.rate_per_second`, `3: limits.max_tunnels: 0 must be at least 1`, `4: limits.max_header_bytes`,
				`5: limits.read_header_timeout: 0s must be longer than 0s`, `6: limits.idle_timeout`, `7: limits.shutdown_grace: -1s must not be negative`}},
		{"burst", "limits:\n  rate_burst: 0\n", []string{`2: limits.rate_burst: 0 must be at least 1`}},
	}
	for _, c := range cases {
		_, err := Parse("p.yaml", []byte(c.in))
		var probs *Problems
		if !errors.As(err, &probs) {
			t.Errorf("%s: Parse returned %v, want *Problems", c.name, err)
			continue
		}
		lines := strings.Split(err.Error(), "\n")
		if len(lines) != len(c.want) {
			t.Errorf("%s: got %d problems, want %d:\n%v", c.name, len(lines), len(c.want), err)
			continue
		}
		for i, w := range c.want {
			line, msg, _ := strings.Cut(w, ": ")
			prefix := "p.yaml:" + line + ": "
			if !strings.HasPrefix(lines[i], prefix) || !strings.Contains(lines[i], msg) {
				t.Errorf("%s: problem %d is %q, want %q", c.name, i, lines[i], prefix+msg)
			}
		}
	}
}

func TestLoadUnreadableFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "missing.yaml")
	_, err := Load(path)
	var probs *Problems
	if !errors.As(err, &probs) || probs.File != path || !strings.Contains(err.Error(), "cannot read the configuration file") {
		t.Errorf("Load(missing) = %v", err)
	}
}

func TestBrokenTestdataFiles(t *testing.T) {
	// The same files drive check-config's tests; here we only check that
	// each one is refused, with at least one line number.
	files, err := filepath.Glob(filepath.Join("testdata", "*.yaml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no testdata: %v", err)
	}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := Parse(f, data); err == nil || !strings.HasPrefix(err.Error(), f+":") {
			t.Errorf("%s: Parse = %v, want problems with line numbers", f, err)
		}
	}
}

func TestValidateWithoutFileHasNoLines(t *testing.T) {
	c := Default()
	c.Policy.Mode = "loud"
	err := c.Validate()
	if err == nil || err.Error() != `config: policy.mode: "loud" is not "enforce" or "report"` {
		t.Errorf("Validate() = %v", err)
	}
}

func TestTLSSection(t *testing.T) {
	c, err := Parse("p.yaml", []byte("tls:\n  cert: /c.pem\n  key: /k.pem\n  client_ca: /ca.pem\n  allowed_identities: [\"agent-*\"]\n"))
	if err != nil {
		t.Fatal(err)
	}
	if c.TLS == nil || c.TLS.Cert != "/c.pem" || c.TLS.Identities()[0] != "agent-*" {
		t.Fatalf("tls: %+v", c.TLS)
	}
	if got := Default().TLS.Identities(); len(got) != 1 || got[0] != "*" {
		t.Fatalf("default identities %q, want [*]", got)
	}
	_, err = Parse("p.yaml", []byte("listen: \":3000\"\ntls:\n  cert: /c.pem\n"))
	if err == nil || !strings.Contains(err.Error(), "p.yaml:2: tls.key: missing") || !strings.Contains(err.Error(), "tls.client_ca: missing") {
		t.Fatalf("incomplete tls section: %v", err)
	}
}

func TestSecretsAndInterceptSections(t *testing.T) {
	c, err := Parse("p.yaml", []byte(`secrets:
  credentials:
    - name: github
      env: GITHUB_TOKEN
      hosts: [api.github.com, "*.githubusercontent.com"]
intercept:
  hosts: ["api.example.com"]
`))
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Secrets.Credentials) != 1 || c.Secrets.Credentials[0].Hosts[1] != "*.githubusercontent.com" || c.Intercept.Hosts[0] != "api.example.com" {
		t.Fatalf("parsed: %+v %+v", c.Secrets, c.Intercept)
	}
	_, err = Parse("p.yaml", []byte("listen: \":3000\"\nsecrets:\n  credentials:\n    - name: github\n      hosts: [api.github.com]\nintercept:\n  ca_cert: /x.pem\n"))
	if err == nil || !strings.Contains(err.Error(), "p.yaml:4: secrets.credentials[0]: has neither env nor file") || !strings.Contains(err.Error(), "p.yaml:6: intercept: ca_cert and ca_key go together") {
		t.Fatalf("problems: %v", err)
	}
}

// The example file says which of its lines differ from the defaults: every
// key whose value is not the default is marked "example, default: …", and
// no line is marked that holds the default.
func TestExampleMarksWhatIsNotTheDefault(t *testing.T) {
	data, err := os.ReadFile("../../configs/proxy.example.yaml")
	if err != nil {
		t.Fatal(err)
	}
	c, err := Parse("example", data)
	if err != nil {
		t.Fatal(err)
	}
	asMap := func(v any) map[string]any {
		b, err := yaml.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		var m map[string]any
		if err := yaml.Unmarshal(b, &m); err != nil {
			t.Fatal(err)
		}
		return m
	}
	example, def := asMap(c), asMap(Default())
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(string(data), "\n")
	// Each key of the file, one level into each section.
	root := doc.Content[0]
	for i := 0; i+1 < len(root.Content); i += 2 {
		section, body := root.Content[i], root.Content[i+1]
		check := func(path string, key *yaml.Node, got, want any) {
			differs := !reflect.DeepEqual(got, want)
			marked := strings.Contains(lines[key.Line-1], "# example, default: ")
			if differs && !marked {
				t.Errorf("line %d: %s is %v, not the default %v, and is not marked \"example, default: …\"", key.Line, path, got, want)
			}
			if !differs && marked {
				t.Errorf("line %d: %s is marked as not the default, but it is the default", key.Line, path)
			}
		}
		if body.Kind != yaml.MappingNode {
			check(section.Value, section, example[section.Value], def[section.Value])
			continue
		}
		ex, _ := example[section.Value].(map[string]any)
		de, _ := def[section.Value].(map[string]any)
		for j := 0; j+1 < len(body.Content); j += 2 {
			k := body.Content[j]
			check(section.Value+"."+k.Value, k, ex[k.Value], de[k.Value])
		}
	}
}

// TestNarrowedRules: an allow or deny entry is a glob or a mapping with
// methods and paths; the mapping is strict, its values checked, and a
// narrowed rule for a host whose tunnels would not be intercepted refused.
func TestNarrowedRules(t *testing.T) {
	good := `policy:
  allow:
    - api.openai.com
    - {host: api.github.com, methods: [GET], paths: ["/repos/acme/**"]}
    - host: internal.example:8080
      methods: [POST]
  deny:
    - {host: "*.github.com", paths: ["/admin/*"]}
intercept:
  hosts: ["api.github.com", "*.github.com"]
`
	c, err := Parse("good.yaml", []byte(good))
	if err != nil {
		t.Fatal(err)
	}
	want := []policy.Rule{{Host: "api.openai.com"}, {Host: "api.github.com", Methods: []string{"GET"}, Paths: []string{"/repos/acme/**"}}, {Host: "internal.example:8080", Methods: []string{"POST"}}}
	if !reflect.DeepEqual(c.Policy.Allow, want) || c.Policy.Deny[0].Paths[0] != "/admin/*" {
		t.Fatalf("allow %+v, deny %+v", c.Policy.Allow, c.Policy.Deny)
	}
	for _, bad := range []struct{ yaml, want string }{
		{"policy:\n  allow:\n    - {host: a.example, method: [GET]}\nintercept:\n  hosts: [a.example]\n", `good.yaml:3: unknown key "policy.allow[0].method" (did you mean "methods"?)`},
		{"policy:\n  allow:\n    - {host: a.example, methods: [get]}\nintercept:\n  hosts: [a.example]\n", `"get" is not an HTTP method`},
		{"policy:\n  allow:\n    - {host: a.example, paths: [repos]}\nintercept:\n  hosts: [a.example]\n", `does not start with "/"`},
		{"policy:\n  allow:\n    - {host: a.example, paths: [/re*]}\nintercept:\n  hosts: [a.example]\n", `whole segments`},
		{"policy:\n  allow:\n    - {host: a.example, methods: [GET]}\n", `needs its tunnels intercepted: add "a.example" to intercept.hosts`},
		{"policy:\n  deny:\n    - {host: a.example:443, methods: [DELETE]}\n", `needs its tunnels intercepted`},
	} {
		_, err := Parse("good.yaml", []byte(bad.yaml))
		if err == nil || !strings.Contains(err.Error(), bad.want) {
			t.Errorf("%q: %v, want %q", bad.yaml, err, bad.want)
		}
	}
}
