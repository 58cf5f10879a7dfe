package proxy

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/slapenir/slapenir/internal/config"
	"github.com/slapenir/slapenir/internal/policy"
)

// TestRefusalsHaveOneShape checks every policy refusal, in each way in, gets a
// 403 with the JSON error shape and a deny record carrying the reason.
func TestRefusalsHaveOneShape(t *testing.T) {
	up := echoUpstream(t)
	u, _ := url.Parse(up.URL)
	cases := []struct {
		name       string
		cfg        func() *config.Config
		target     string // scheme://host:port
		wantReason string
	}{
		{"telemetry deny list", nil, "http://sentry.io:443", "telemetry"},
		{"deny list glob", func() *config.Config {
			c := loopbackConfig()
			c.Policy.Deny = policy.Hosts("*.blocked.example")
			return c
		}, "http://api.blocked.example:443", "denylist"},
		{"default deny", func() *config.Config {
			c := loopbackConfig()
			c.Policy.Default = "deny"
			return c
		}, "http://" + u.Host, "default_deny"},
		{"private address", defaultConfigNoRate, "http://10.1.2.3:443", "private_address"},
		{"loopback address", defaultConfigNoRate, "http://" + u.Host, "private_address"},
		{"name resolving to loopback", defaultConfigNoRate, "http://localhost:" + u.Port(), "private_address"},
		{"cloud metadata", defaultConfigNoRate, "http://169.254.169.254:443", "metadata_address"},
		{"cloud metadata v6", defaultConfigNoRate, "http://[fd00:ec2::254]:443", "metadata_address"},
	}
	for _, tc := range cases {
		for _, mode := range []string{"forward", "target", "connect"} {
			t.Run(tc.name+"/"+mode, func(t *testing.T) {
				cfg := loopbackConfig()
				if tc.cfg != nil {
					cfg = tc.cfg()
				}
				// Let the CONNECT port rule pass so the host rule decides.
				cfg.Policy.ConnectPorts = append(cfg.Policy.ConnectPorts, portOf(t, tc.target))
				p := startProxy(t, cfg)
				resp := sendVia(t, p, mode, tc.target)
				e := decodeError(t, resp)
				if resp.StatusCode != http.StatusForbidden || e.Reason != tc.wantReason {
					t.Fatalf("got %d %+v, want 403 reason %s", resp.StatusCode, e, tc.wantReason)
				}
				tu, _ := url.Parse(tc.target)
				if e.Host != tu.Hostname() {
					t.Errorf("reply names host %q, want %q", e.Host, tu.Hostname())
				}
				rec := p.lastRecord(t, 1)
				if rec.Decision != "deny" || rec.Reason != tc.wantReason || rec.Status != 403 || rec.Mode != mode {
					t.Fatalf("audit record: %+v", rec)
				}
			})
		}
	}
}

// sendVia sends one request for target through the proxy the given way.
func sendVia(t *testing.T, p *testProxy, mode, target string) *http.Response {
	t.Helper()
	tu, _ := url.Parse(target)
	var raw string
	switch mode {
	case "forward":
		raw = fmt.Sprintf("GET %s/x HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n", target, tu.Host)
	case "target":
		raw = fmt.Sprintf("GET /x HTTP/1.1\r\nHost: %s\r\nX-Target-URL: %s\r\nConnection: close\r\n\r\n", p.addr, target)
	case "connect":
		raw = fmt.Sprintf("CONNECT %s HTTP/1.1\r\nHost: %s\r\n\r\n", tu.Host, tu.Host)
	}
	return rawExchange(t, p.addr, raw)
}

func TestConnectPortRefused(t *testing.T) {
	p := startProxy(t, nil)
	resp := sendVia(t, p, "connect", "http://127.0.0.1:22")
	e := decodeError(t, resp)
	if resp.StatusCode != 403 || e.Reason != "connect_port" {
		t.Fatalf("got %d %+v", resp.StatusCode, e)
	}
	if rec := p.lastRecord(t, 1); rec.Reason != "connect_port" || rec.Decision != "deny" {
		t.Fatalf("record: %+v", rec)
	}
}

func TestTargetBadScheme(t *testing.T) {
	p := startProxy(t, nil)
	for _, target := range []string{"ftp://x", "file:///etc/passwd", "gopher://h:70", "not a url", "http://"} {
		req, _ := http.NewRequest("GET", "http://"+p.addr+"/api/tags", nil)
		req.Header.Set("X-Target-URL", target)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		e := decodeError(t, resp)
		if resp.StatusCode != 400 || e.Reason != "bad_target" {
			t.Fatalf("%q: got %d %+v", target, resp.StatusCode, e)
		}
		if strings.HasPrefix(target, "ftp") && !strings.Contains(e.Error, `unsupported scheme "ftp"`) {
			t.Errorf("error does not say why: %q", e.Error)
		}
	}
	recs := p.records(t, 5)
	for _, r := range recs {
		if r.Decision != "deny" || r.Status != 400 || r.Reason != "bad_target" {
			t.Fatalf("record: %+v", r)
		}
	}
}

// TestReportMode lets would-be refusals through and records them as report.
func TestReportMode(t *testing.T) {
	var hits atomic.Int32
	up := echoUpstream(t)
	cfg := defaultConfigNoRate() // loopback not allowed: the address rule would refuse
	cfg.Policy.Mode = "report"
	cfg.Policy.Default = "deny"
	p := startProxy(t, cfg)
	for i := 0; i < 2; i++ { // the second request reuses the pooled connection
		resp, err := p.client().Get(up.URL + "/r")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("report mode refused: %d", resp.StatusCode)
		}
		hits.Add(1)
	}
	for i, rec := range p.records(t, 2) {
		if rec.Decision != "report" || rec.Status != 200 || rec.Reason == "" {
			t.Fatalf("record %d: %+v", i, rec)
		}
	}
}
