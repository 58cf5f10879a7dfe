package proxy

import (
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/slapenir/slapenir/internal/pki/devca"
)

// TestExplainAnswersOnlyForTheCaller: two agents with real certificates on
// one proxy. Each may ask /explain about itself, by default or by any name
// its certificate carries, and is told only about the credentials its role
// may use; asking about the other agent (or any name not its own, even one
// of its own role) is refused with a 403 that says nothing about that
// identity, and the probe is audited.
func TestExplainAnswersOnlyForTheCaller(t *testing.T) {
	f := startRolesProxy(t)
	ci := f.direct(f.client(f.clientCert(t, devca.Request{CommonName: "agent-ci-7"})))
	nogrant := f.direct(f.client(f.clientCert(t, devca.Request{CommonName: "agent-nogrant"})))
	explain := func(c *http.Client, query string) (int, string) {
		t.Helper()
		resp, err := c.Get("https://" + f.addr + "/explain?url=" + url.QueryEscape(f.up.URL+"/x") + query)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}

	for _, c := range []struct {
		name   string
		client *http.Client
		query  string
	}{
		{"ci about nogrant", ci, "&identity=agent-nogrant"},
		{"nogrant about ci", nogrant, "&identity=agent-ci-7"},
		{"ci about a name of its own role", ci, "&identity=agent-ci-8"},
		{"nogrant about a default-role name", nogrant, "&identity=agent-dev"},
	} {
		code, body := explain(c.client, c.query)
		if code != http.StatusForbidden || !strings.Contains(body, reasonExplainOther) {
			t.Errorf("%s: %d %s, want 403 %s", c.name, code, body, reasonExplainOther)
		}
		for _, leak := range []string{`"role"`, `"decision"`, `"credentials"`, "github", f.placeholder} {
			if strings.Contains(body, leak) {
				t.Errorf("%s: the refusal tells %s: %s", c.name, leak, body)
			}
		}
	}

	// About itself: its own role, and only the credentials it may use.
	for _, q := range []string{"", "&identity=agent-ci-7"} {
		code, body := explain(ci, q)
		if code != 200 || !strings.Contains(body, `"role":"ci"`) || !strings.Contains(body, `"name":"github"`) {
			t.Errorf("ci about itself (%q): %d %s", q, code, body)
		}
	}
	code, body := explain(nogrant, "")
	if code != 200 || !strings.Contains(body, `"role":"nogrant"`) || !strings.Contains(body, `"credentials":[]`) {
		t.Errorf("nogrant about itself: %d %s, want its role and no credentials", code, body)
	}
	if strings.Contains(body, "github") || strings.Contains(body, f.placeholder) {
		t.Errorf("nogrant is told about a credential its role may not use: %s", body)
	}

	// Each probe is audited under the asker's identity; answers are not.
	recs := f.records(t, 4)
	for i, who := range []string{"agent-ci-7", "agent-nogrant", "agent-ci-7", "agent-nogrant"} {
		if r := recs[i]; r.Identity != who || r.Decision != decisionDeny || r.Reason != reasonExplainOther || r.Status != http.StatusForbidden {
			t.Errorf("probe %d's record: %+v", i, r)
		}
	}
}
