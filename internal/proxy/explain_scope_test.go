package proxy

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/slapenir/slapenir/internal/config"
	"github.com/slapenir/slapenir/internal/pki/devca"
)

// scopeRuleSet explains a configuration with three credentials for three
// different hosts, and a role (agent-ro) granted none of them.
func scopeRuleSet(t *testing.T) *RuleSet {
	t.Helper()
	cfg, err := config.Parse("proxy.yaml", []byte(`secrets:
  credentials:
    - {name: github, env: GITHUB_TOKEN, hosts: [api.github.com]}
    - {name: pypi, env: PYPI_TOKEN, hosts: [upload.pypi.org]}
    - {name: slack, env: SLACK_BOT_TOKEN, hosts: [slack.com]}
roles:
  - {name: ro, identities: [agent-ro], credentials: []}
`))
	if err != nil {
		t.Fatal(err)
	}
	creds, err := cfg.Secrets.Describe()
	if err != nil {
		t.Fatal(err)
	}
	e, err := NewRuleSet(cfg, creds)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// TestExplainTextNamesOnlyTheHostsCredentials: policy explain's text lists
// a line per credential whose hosts include the request's host — injected,
// or refused for a reason that is about this host (cleartext, not granted)
// — and sums up the credentials for other hosts in one line, instead of a
// "not injected" line for each.
func TestExplainTextNamesOnlyTheHostsCredentials(t *testing.T) {
	e := scopeRuleSet(t)
	explain := func(method, u, identity string) (Explanation, string) {
		t.Helper()
		x, err := e.Explain(context.Background(), method, u, identity, false)
		if err != nil {
			t.Fatal(err)
		}
		return x, x.Text()
	}
	for _, c := range []struct {
		name, method, url, identity string
		want                        []string
		absent                      []string
	}{
		{"a host no credential is for", "GET", "https://example.com/", "",
			[]string{"  credentials: 3 not for example.com:443 (github, pypi, slack); a placeholder of theirs sent here is forwarded unchanged and audited (placeholder_foreign_host)\n"},
			[]string{"credential:  ", "not injected"}},
		{"the credential's host", "GET", "https://api.github.com/user", "",
			[]string{"  credential:  github (placeholder DUMMY_GITHUB): injected in header;", "  credentials: 2 not for api.github.com:443 (pypi, slack);"},
			[]string{"credential:  pypi", "credential:  slack"}},
		{"its host in the clear", "GET", "http://api.github.com/user", "",
			[]string{"  credential:  github (placeholder DUMMY_GITHUB): not injected; placeholder_cleartext:", "  credentials: 2 not for api.github.com:80 (pypi, slack);"},
			[]string{"credential:  pypi", "credential:  slack"}},
		{"its host, a role not granted it", "GET", "https://api.github.com/user", "agent-ro",
			[]string{"  credential:  github (placeholder DUMMY_GITHUB): not injected; placeholder_not_granted: role ro may not use it", "  credentials: 2 not for api.github.com:443"},
			[]string{"credential:  pypi", "credential:  slack"}},
		{"a refused request", "GET", "https://sentry.io/", "",
			[]string{"  credentials: 3 not for sentry.io:443 (github, pypi, slack); the request is refused: nothing is sent\n"},
			[]string{"credential:  ", "forwarded unchanged"}},
	} {
		x, text := explain(c.method, c.url, c.identity)
		for _, w := range c.want {
			if !strings.Contains(text, w) {
				t.Errorf("%s: the text lacks %q:\n%s", c.name, w, text)
			}
		}
		for _, a := range c.absent {
			if strings.Contains(text, a) {
				t.Errorf("%s: the text has %q:\n%s", c.name, a, text)
			}
		}
		// The JSON keeps every credential, each saying whether it is
		// for this host (and, if not, the problem the proxy records).
		if len(x.Credentials) != 3 {
			t.Fatalf("%s: JSON lists %d credentials, want all 3", c.name, len(x.Credentials))
		}
		for _, ec := range x.Credentials {
			if want := ec.Name == "github" && strings.Contains(c.url, "api.github.com"); ec.ForHost != want {
				t.Errorf("%s: %s for_host %v, want %v", c.name, ec.Name, ec.ForHost, want)
			}
			if !ec.ForHost && x.Decision != decisionDeny && !strings.HasPrefix(ec.Why, problemForeignHost+":") {
				t.Errorf("%s: %s why %q, want %s", c.name, ec.Name, ec.Why, problemForeignHost)
			}
		}
	}
	many := Explanation{Method: "GET", URL: "https://x.test/", Way: modeConnect, Host: "x.test", Port: 443, Decision: decisionAllow}
	for _, n := range []string{"a", "b", "c", "d", "e", "f", "g"} {
		many.Credentials = append(many.Credentials, ExplainedCredential{Name: n})
	}
	if text := many.Text(); !strings.Contains(text, "  credentials: 7 not for x.test:443 (a, b, c, d, e and 2 more; --json lists them);") {
		t.Errorf("seven credentials for other hosts:\n%s", text)
	}
}

// TestExplainOfAForeignHostAgreesWithTheProxyForARoleNotGranted (issue 25):
// a placeholder of a credential the agent's role may not use, sent to a
// host the credential is not for, is recorded by the proxy as
// placeholder_foreign_host; the agent's /explain says the same, and the
// operator's text counts the credential as not for this host.
func TestExplainOfAForeignHostAgreesWithTheProxyForARoleNotGranted(t *testing.T) {
	f := startRolesProxy(t)
	// Not the credential's host (127.0.0.1): the same upstream by name.
	target := strings.Replace(f.up.URL, "127.0.0.1", "localhost", 1) + "/x"
	c := f.client(f.clientCert(t, devca.Request{CommonName: "agent-nogrant"}))
	req, _ := http.NewRequest("GET", target, nil)
	req.Header.Set("Authorization", "Bearer "+f.placeholder)
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	rec := f.records(t, 1)[0]
	if len(rec.Placeholders) != 1 || rec.Placeholders[0].Problem != problemForeignHost {
		t.Fatalf("the proxy recorded placeholders %+v, want one %s", rec.Placeholders, problemForeignHost)
	}

	x, err := f.srv.cur.Load().rules.Explain(context.Background(), "GET", target, "agent-nogrant", false)
	if err != nil {
		t.Fatal(err)
	}
	if len(x.Credentials) != 1 || x.Credentials[0].ForHost || !strings.HasPrefix(x.Credentials[0].Why, rec.Placeholders[0].Problem+":") {
		t.Fatalf("explain says %+v; the proxy recorded %s", x.Credentials, rec.Placeholders[0].Problem)
	}
	if text := x.Text(); !strings.Contains(text, "credentials: 1 not for localhost:") || strings.Contains(text, "placeholder_not_granted") {
		t.Fatalf("explain's text:\n%s", text)
	}
}
