package policy

import (
	"strings"
	"testing"
)

func mustNew(t testing.TB, cfg Config) *Policy {
	t.Helper()
	p, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestDecide(t *testing.T) {
	off := false
	base := Config{
		Default:      "deny",
		Allow:        Hosts("api.openai.com:443", "*.github.com", "github.com", "example.com:*", "10.0.0.7", "[::1]:8080", "sentry.io", "git.example.org:22"),
		Deny:         Hosts("gist.github.com", "*.evil.github.com", "example.com:25"),
		ConnectPorts: []int{443, 8443},
	}
	allowAll := Config{Default: "allow", Deny: Hosts("blocked.example")}
	noTelemetry := Config{Default: "allow", TelemetryDeny: &off}

	cases := []struct {
		name    string
		cfg     Config
		host    string
		port    int
		connect bool
		want    Decision
	}{
		{"exact allow with port", base, "api.openai.com", 443, false, Decision{true, false, ReasonAllowlist, "api.openai.com:443"}},
		{"exact allow wrong port", base, "api.openai.com", 80, false, Decision{false, false, ReasonDefaultDeny, ""}},
		{"wildcard allow", base, "api.github.com", 443, false, Decision{true, false, ReasonAllowlist, "*.github.com"}},
		{"wildcard deep", base, "a.b.github.com", 80, false, Decision{true, false, ReasonAllowlist, "*.github.com"}},
		{"apex listed separately", base, "github.com", 443, false, Decision{true, false, ReasonAllowlist, "github.com"}},
		{"lookalike not matched", base, "evilgithub.com", 443, false, Decision{false, false, ReasonDefaultDeny, ""}},
		{"deny beats allow", base, "gist.github.com", 443, false, Decision{false, false, ReasonDenylist, "gist.github.com"}},
		{"deny wildcard beats allow wildcard", base, "x.evil.github.com", 443, false, Decision{false, false, ReasonDenylist, "*.evil.github.com"}},
		{"deny with port only that port", base, "example.com", 25, false, Decision{false, false, ReasonDenylist, "example.com:25"}},
		{"any-port allow", base, "example.com", 8080, false, Decision{true, false, ReasonAllowlist, "example.com"}},
		{"upper case and trailing dot", base, "GIST.GitHub.com.", 443, false, Decision{false, false, ReasonDenylist, "gist.github.com"}},
		{"IP literal", base, "10.0.0.7", 80, false, Decision{true, false, ReasonAllowlist, "10.0.0.7"}},
		{"IPv6 spelled differently", base, "0:0::1", 8080, false, Decision{true, false, ReasonAllowlist, "[::1]:8080"}},
		{"IPv4-mapped literal", base, "::FFFF:10.0.0.7", 80, false, Decision{true, false, ReasonAllowlist, "10.0.0.7"}},
		{"IPv6 bracketed", base, "[::1]", 8080, false, Decision{true, false, ReasonAllowlist, "[::1]:8080"}},
		{"telemetry beats allow", base, "sentry.io", 443, false, Decision{false, false, ReasonTelemetry, "sentry.io"}},
		{"telemetry wildcard", allowAll, "o123.ingest.sentry.io", 443, false, Decision{false, false, ReasonTelemetry, "*.sentry.io"}},
		{"telemetry exact", allowAll, "telemetry.anthropic.com", 443, false, Decision{false, false, ReasonTelemetry, "telemetry.anthropic.com"}},
		{"telemetry cline", allowAll, "api.cline.bot", 443, false, Decision{false, false, ReasonTelemetry, "api.cline.bot"}},
		{"telemetry off", noTelemetry, "sentry.io", 443, false, Decision{true, false, ReasonDefaultAllow, ""}},
		{"default allow", allowAll, "anything.example", 80, false, Decision{true, false, ReasonDefaultAllow, ""}},
		{"deny under default allow", allowAll, "blocked.example", 80, false, Decision{false, false, ReasonDenylist, "blocked.example"}},
		{"connect allowed port", base, "api.github.com", 8443, true, Decision{true, false, ReasonAllowlist, "*.github.com"}},
		{"connect bad port even if allowed", base, "git.example.org", 22, true, Decision{false, false, ReasonConnectPort, "22"}},
		{"same host without connect", base, "git.example.org", 22, false, Decision{true, false, ReasonAllowlist, "git.example.org:22"}},
		{"connect default ports zero config", Config{}, "x.example", 443, true, Decision{false, false, ReasonConnectPort, "443"}},
		{"deny reported before connect port", base, "gist.github.com", 22, true, Decision{false, false, ReasonDenylist, "gist.github.com"}},
	}
	for _, c := range cases {
		p := mustNew(t, c.cfg)
		if got := p.Decide(c.host, c.port, c.connect); got != c.want {
			t.Errorf("%s: Decide(%q, %d, %v) = %+v, want %+v", c.name, c.host, c.port, c.connect, got, c.want)
		}
	}
}

func TestDecideReportMode(t *testing.T) {
	p := mustNew(t, Config{Default: "deny", Mode: "report", Allow: Hosts("ok.example"), Deny: Hosts("bad.example"), ConnectPorts: []int{443}})
	cases := []struct {
		host    string
		port    int
		connect bool
		want    Decision
	}{
		{"bad.example", 443, false, Decision{true, true, ReasonDenylist, "bad.example"}},
		{"other.example", 443, false, Decision{true, true, ReasonDefaultDeny, ""}},
		{"sentry.io", 443, false, Decision{true, true, ReasonTelemetry, "sentry.io"}},
		{"ok.example", 22, true, Decision{true, true, ReasonConnectPort, "22"}},
		{"ok.example", 443, true, Decision{true, false, ReasonAllowlist, "ok.example"}},
	}
	for _, c := range cases {
		if got := p.Decide(c.host, c.port, c.connect); got != c.want {
			t.Errorf("report mode: Decide(%q, %d, %v) = %+v, want %+v", c.host, c.port, c.connect, got, c.want)
		}
	}
}

func TestDecideMostSpecificRule(t *testing.T) {
	p := mustNew(t, Config{Default: "deny", Allow: Hosts("*", "*.com", "*.example.com", "api.example.com:*", "*:443")})
	for host, want := range map[string]string{
		"api.example.com":   "api.example.com",
		"x.api.example.com": "*.example.com",
		"other.com":         "*.com",
		"other.net":         "*",
	} {
		if got := p.Decide(host, 80, false); !got.Allow || got.Rule != want {
			t.Errorf("Decide(%q) = %+v, want rule %q", host, got, want)
		}
	}
}

func TestNewReportsEveryProblem(t *testing.T) {
	_, err := New(Config{
		Default:      "maybe",
		Mode:         "loud",
		Allow:        Hosts("ok.example", "a*b.example"),
		Deny:         Hosts("x:0"),
		ConnectPorts: []int{0},
		PrivateAllow: []string{"10.0.0.0/40", "127.0.0.1:0"},
	})
	if err == nil {
		t.Fatal("New accepted a broken policy")
	}
	for _, want := range []string{`default "maybe"`, `mode "loud"`, `allow[1]`, `deny[0]`, `connect_ports[0]`, `private_allow[0]`, `private_allow[1]`} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("New error does not mention %s:\n%v", want, err)
		}
	}
}

func TestNewAcceptsDefaults(t *testing.T) {
	p := mustNew(t, Default())
	if d := p.Decide("sentry.io", 443, false); d.Allow || d.Reason != ReasonTelemetry {
		t.Errorf("default policy lets telemetry through: %+v", d)
	}
	if d := p.Decide("api.openai.com", 443, true); !d.Allow || d.Reason != ReasonDefaultAllow {
		t.Errorf("default policy: %+v", d)
	}
	if d := p.Decide("api.openai.com", 22, true); d.Allow || d.Reason != ReasonConnectPort {
		t.Errorf("default policy lets CONNECT reach port 22: %+v", d)
	}
}

// TestMethodAndPathRules: rules narrowed to methods and paths decide each
// request the proxy sees whole; a tunnel is decided by host alone.
func TestMethodAndPathRules(t *testing.T) {
	p := mustNew(t, Config{Default: "allow", ConnectPorts: []int{443},
		Allow: []Rule{
			{Host: "api.github.com", Methods: []string{"GET", "HEAD"}, Paths: []string{"/repos/acme/**", "/user"}},
			{Host: "api.github.com", Methods: []string{"POST"}, Paths: []string{"/repos/acme/*/issues"}},
			{Host: "uploads.example"},
		},
		Deny: []Rule{
			{Host: "*.example", Methods: []string{"DELETE"}},
			{Host: "files.example", Paths: []string{"/secret/**"}},
		},
	})
	for _, c := range []struct {
		host, method, path string
		reason, rule       string
	}{
		{"api.github.com", "GET", "/repos/acme/widgets/pulls", ReasonAllowlist, "api.github.com GET HEAD /repos/acme/** /user"},
		{"api.github.com", "GET", "/repos/acme", ReasonAllowlist, "api.github.com GET HEAD /repos/acme/** /user"},
		{"api.github.com", "HEAD", "/user", ReasonAllowlist, "api.github.com GET HEAD /repos/acme/** /user"},
		{"api.github.com", "POST", "/repos/acme/widgets/issues", ReasonAllowlist, "api.github.com POST /repos/acme/*/issues"},
		{"API.GitHub.com.", "GET", "/user", ReasonAllowlist, "api.github.com GET HEAD /repos/acme/** /user"},
		{"api.github.com", "DELETE", "/repos/acme/widgets", ReasonMethodDenied, "api.github.com GET HEAD /repos/acme/** /user"},
		{"api.github.com", "GET", "/repos/other/x", ReasonPathDenied, "api.github.com GET HEAD /repos/acme/** /user"},
		{"api.github.com", "POST", "/repos/acme/widgets/pulls", ReasonPathDenied, "api.github.com GET HEAD /repos/acme/** /user"},
		// Dot and empty segments never match a pattern: the upstream may
		// resolve them out of it.
		{"api.github.com", "GET", "/repos/acme/../other", ReasonPathDenied, "api.github.com GET HEAD /repos/acme/** /user"},
		{"api.github.com", "GET", "/repos/acme/./x", ReasonPathDenied, "api.github.com GET HEAD /repos/acme/** /user"},
		{"api.github.com", "GET", "//repos/acme/x", ReasonPathDenied, "api.github.com GET HEAD /repos/acme/** /user"},
		{"uploads.example", "DELETE", "/x", ReasonMethodDenied, "*.example DELETE"},
		{"uploads.example", "PUT", "/x", ReasonAllowlist, "uploads.example"},
		{"files.example", "GET", "/secret/a/b", ReasonPathDenied, "files.example /secret/**"},
		{"files.example", "GET", "/public", ReasonDefaultAllow, ""},
		{"other.test", "DELETE", "/", ReasonDefaultAllow, ""},
	} {
		d := p.DecideRequest(c.host, 443, c.method, c.path)
		wantAllow := c.reason == ReasonAllowlist || c.reason == ReasonDefaultAllow
		if d.Allow != wantAllow || d.Reason != c.reason || d.Rule != c.rule {
			t.Errorf("%s %s%s: %+v, want allow=%v %s %q", c.method, c.host, c.path, d, wantAllow, c.reason, c.rule)
		}
	}
	// A tunnel sees no method or path: narrowed allow rules let it open
	// (its requests are decided inside), narrowed deny rules do not refuse it.
	if d := p.Decide("api.github.com", 443, true); !d.Allow || d.Reason != ReasonAllowlist {
		t.Errorf("CONNECT api.github.com: %+v", d)
	}
	if d := p.Decide("files.example", 443, true); !d.Allow || d.Reason != ReasonDefaultAllow {
		t.Errorf("CONNECT files.example: %+v", d)
	}
	deny := mustNew(t, Config{Default: "deny", Allow: []Rule{{Host: "api.github.com", Methods: []string{"GET"}}}})
	if d := deny.DecideRequest("api.github.com", 80, "POST", "/"); d.Allow || d.Reason != ReasonMethodDenied {
		t.Errorf("default deny, POST to a GET-only host: %+v, want method_denied rather than default_deny", d)
	}
}

// TestDecideAllocatesNothing: a decision is made for every request.
func TestDecideAllocatesNothing(t *testing.T) {
	p := mustNew(t, Config{Default: "deny", ConnectPorts: []int{443},
		Allow: append(Hosts("*.github.com", "api.openai.com:443"), Rule{Host: "api.github.com", Methods: []string{"GET"}, Paths: []string{"/repos/**"}}),
		Deny:  Hosts("gist.github.com")})
	if n := testing.AllocsPerRun(100, func() {
		p.Decide("api.github.com", 443, true)
		p.DecideRequest("api.github.com", 443, "GET", "/repos/acme/x")
		p.DecideRequest("gist.github.com", 443, "GET", "/")
	}); n != 0 {
		t.Fatalf("a decision allocates %v times", n)
	}
}
