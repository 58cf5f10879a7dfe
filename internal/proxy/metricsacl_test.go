package proxy

import (
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/slapenir/slapenir/internal/config"
	"github.com/slapenir/slapenir/internal/pki/devca"
)

// TestMetricsAreNotServedToAgents: the metrics name every agent, its role,
// its refusals and its certificate's expiry, so one agent asking the proxy
// for them would learn about all the others. The agents' port refuses them;
// the operator scrapes metrics.listen.
func TestMetricsAreNotServedToAgents(t *testing.T) {
	up := echoUpstream(t)
	f := startMTLSProxyWith(t, nil, func(*config.Config) {})
	other := f.client(f.clientCert(t, devca.Request{CommonName: "agent-other"}))
	if resp, err := other.Get(up.URL + "/"); err != nil {
		t.Fatal(err)
	} else {
		resp.Body.Close()
	}
	tr := f.client(f.clientCert(t, devca.Request{CommonName: "agent-nosy"})).Transport.(*http.Transport).Clone()
	tr.Proxy = nil // the proxy itself, not through it
	resp, err := (&http.Client{Transport: tr}).Get("https://" + f.addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 403 || !strings.Contains(string(body), `"metrics_elsewhere"`) || strings.Contains(string(body), "agent-other") {
		t.Fatalf("an agent asking for /metrics: %d %s", resp.StatusCode, body)
	}
	if m := f.scrape(t); !strings.Contains(m, `identity="agent-other"`) || !strings.Contains(m, `reason="metrics_elsewhere"`) {
		t.Fatalf("the operator's metrics lack the agents' requests:\n%.2000s", m)
	}
}
