package proxy

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/slapenir/slapenir/internal/config"
	"github.com/slapenir/slapenir/internal/policy"
	"github.com/slapenir/slapenir/internal/secrets"
)

// TestExplainAgreesWithTheProxy: for a table of requests, what GET /explain
// says (decision, reason, injection) is what the proxy then does with the
// real request: the audit record's decision and reason, and what the
// upstream receives.
func TestExplainAgreesWithTheProxy(t *testing.T) {
	var mu sync.Mutex
	var seen string
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		seen = r.Header.Get("Authorization")
		mu.Unlock()
	}))
	t.Cleanup(up.Close)
	port := strings.TrimPrefix(up.URL, "http://127.0.0.1:")
	p := credProxyWith(t, secrets.CredentialConfig{Name: "github", Env: "GITHUB_TOKEN", Hosts: []string{"127.0.0.1"}, PlaintextHTTP: true},
		func(cfg *config.Config, _ *Options) {
			cfg.Policy.Deny = append(policy.Hosts("denied.test"), policy.Rule{Host: "127.0.0.1:" + port, Methods: []string{"DELETE"}})
		})
	client := p.client()
	for i, c := range []struct{ name, method, url string }{
		{"allowed, credential's host", "GET", up.URL + "/a"},
		{"allowed, not the credential's host", "GET", "http://localhost:" + port + "/b"},
		{"deny list", "GET", "http://denied.test/c"},
		{"telemetry", "GET", "http://sentry.io/d"},
		{"private address", "GET", "http://10.255.255.1:9/e"},
		{"a deny rule for one method", "DELETE", up.URL + "/f"},
		{"another method to that host", "PUT", up.URL + "/g"},
	} {
		resp, err := http.Get("http://" + p.addr + "/explain?method=" + c.method + "&url=" + url.QueryEscape(c.url))
		if err != nil {
			t.Fatal(err)
		}
		var x Explanation
		err = json.NewDecoder(resp.Body).Decode(&x)
		resp.Body.Close()
		if err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("%s: /explain answered %d: %v", c.name, resp.StatusCode, err)
		}

		mu.Lock()
		seen = ""
		mu.Unlock()
		req, _ := http.NewRequest(c.method, c.url, nil)
		req.Header.Set("Authorization", "Bearer DUMMY_GITHUB")
		if resp, err := client.Do(req); err == nil {
			resp.Body.Close()
		}
		rec := p.lastRecord(t, i+1)
		t.Logf("%s: %s (%s), injected %v", c.name, x.Decision, x.Reason, len(x.Credentials) == 1 && len(x.Credentials[0].Injected) > 0)
		if rec.Decision != x.Decision || rec.Reason != x.Reason {
			t.Errorf("%s: explain said %s (%s), the proxy did %s (%s)", c.name, x.Decision, x.Reason, rec.Decision, rec.Reason)
		}
		injected := len(x.Credentials) == 1 && len(x.Credentials[0].Injected) > 0
		mu.Lock()
		got := seen
		mu.Unlock()
		if injected != (got == "Bearer "+realToken) {
			t.Errorf("%s: explain said injected %v, the upstream got %q", c.name, injected, got)
		}
		if x.Decision == decisionAllow && !injected && got != "Bearer DUMMY_GITHUB" {
			t.Errorf("%s: the placeholder did not arrive unchanged: %q", c.name, got)
		}
	}
}

// TestRecordsAndHealthNameTheConfigVersion: every audit record (write-ahead
// and outcome, allowed and refused) and /health carry the version of the
// configuration the proxy runs; another configuration has another.
func TestRecordsAndHealthNameTheConfigVersion(t *testing.T) {
	up := echoUpstream(t)
	cfg := loopbackConfig()
	cfg.Policy.Deny = policy.Hosts("denied.test")
	p := startProxy(t, cfg)
	want := cfg.Version()
	if len(want) != 12 {
		t.Fatalf("version %q", want)
	}
	resp, err := http.Get("http://" + p.addr + "/health")
	if err != nil {
		t.Fatal(err)
	}
	var h struct{ Config string }
	decodeJSON(t, resp, &h)
	if h.Config != want {
		t.Fatalf("/health config %q, want %q", h.Config, want)
	}
	for _, u := range []string{up.URL + "/a", "http://denied.test/b"} {
		if resp, err := p.client().Get(u); err == nil {
			resp.Body.Close()
		}
	}
	recs := readAllRecords(t, p.auditFile)
	if len(recs) < 3 {
		t.Fatalf("%d records, want a start, an outcome and a refusal", len(recs))
	}
	for _, r := range recs {
		if r.Config != want {
			t.Fatalf("record %+v does not name config %s", r, want)
		}
	}
	other := loopbackConfig()
	if other.Version() == want || other.Version() != loopbackConfig().Version() {
		t.Errorf("versions: %s for another config, %s for the same one again; want different, equal", other.Version(), loopbackConfig().Version())
	}
}

// TestAgentExplainDoesNotLookNamesUp: an agent's /explain of a name it
// chose does not resolve it (a lookup would carry what the name spells to a
// nameserver, unaudited: a channel out); the answer says the addresses are
// checked when a request is made.
func TestAgentExplainDoesNotLookNamesUp(t *testing.T) {
	var lookups atomic.Int64
	resolver := &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, network, address string) (net.Conn, error) {
		lookups.Add(1)
		return nil, errors.New("no nameserver in this test")
	}}
	p := startProxyOpts(t, loopbackConfig(), Options{Resolver: resolver})
	name := fmt.Sprintf("x%d.example", time.Now().UnixNano())
	resp, err := http.Get("http://" + p.addr + "/explain?url=" + url.QueryEscape("http://"+name+"/"))
	if err != nil {
		t.Fatal(err)
	}
	var x Explanation
	decodeJSON(t, resp, &x)
	if n := lookups.Load(); n != 0 {
		t.Fatalf("/explain of %s made %d DNS queries, want none", name, n)
	}
	if x.Decision != decisionAllow || len(x.Addresses) != 0 || !strings.Contains(x.NotLookedUp, "not looked up") {
		t.Fatalf("/explain of %s: %s, addresses %v, %q; want allow, none, and a note that it was not looked up", name, x.Decision, x.Addresses, x.NotLookedUp)
	}
}
