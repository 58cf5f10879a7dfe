package proxy

import (
	"net/http/httptest"
	"net/url"
	"testing"
	"time"

	"github.com/slapenir/slapenir/internal/audit"
	"github.com/slapenir/slapenir/internal/config"
)

// TestARefusalIsFinal: once an exchange is refused, what is noted after
// (the rule that allowed it, what report mode would have refused) adds
// nothing to its record's decision and reason.
func TestARefusalIsFinal(t *testing.T) {
	x := &exchange{}
	x.fail(403, "path_denied", "refused")
	x.allow("allowlist")
	x.report("private_address")
	if x.out.decision != decisionDeny || x.out.reason != "path_denied" {
		t.Fatalf("after a refusal: %s %s, want deny path_denied", x.out.decision, x.out.reason)
	}
	y := &exchange{}
	y.allow("allowlist")
	y.report("private_address")
	if y.out.decision != decisionReport || y.out.reason != "private_address" {
		t.Fatalf("report after allow: %s %s", y.out.decision, y.out.reason)
	}
}

// TestRecordIsThePlanAndTheOutcome: the record is made from the plan
// (where, by which way, for which role) and the outcome; the write-ahead
// record has neither the end's measurements nor its status.
func TestRecordIsThePlanAndTheOutcome(t *testing.T) {
	rules, err := NewRuleSet(config.Default(), nil)
	if err != nil {
		t.Fatal(err)
	}
	u, _ := url.Parse("http://Example.COM./a?k=secret")
	x := &exchange{st: &state{version: "v1"}, role: rules.def, start: time.Unix(0, 0), id: "id1", client: "1.2.3.4:5", method: "GET", identity: "agent"}
	rules.planInto(&x.p, x.role, requestLine{way: modeForward, method: "GET", url: u})
	x.w = newResponseRecorder(httptest.NewRecorder(), x, 0)
	x.allow(x.p.decision.Reason)
	ahead := x.record(false)
	want := audit.Record{Time: x.start.UTC(), RequestID: "id1", Client: "1.2.3.4:5", Method: "GET", Path: audit.MaskPath("/a?k=secret"),
		Mode: modeForward, Scheme: "http", Host: "example.com", Port: 80, Identity: "agent", Role: "default",
		Decision: decisionAllow, Reason: "default_allow", Config: "v1", Phase: audit.PhaseStart}
	if ahead.Phase != want.Phase || ahead.Host != want.Host || ahead.Port != want.Port || ahead.Path != want.Path || ahead.Reason != want.Reason ||
		ahead.Decision != want.Decision || ahead.Role != want.Role || ahead.Identity != want.Identity || ahead.Mode != want.Mode || ahead.Scheme != want.Scheme || ahead.Config != want.Config {
		t.Fatalf("write-ahead record\n%+v\nwant\n%+v", ahead, want)
	}
	x.w.WriteHeader(204)
	x.out.path = "/a?k=***"
	x.anonymous = true
	end := x.record(true)
	if end.Phase != "" || end.Status != 204 || end.Path != "/a?k=***" || end.Identity != "" || end.Role != "" || end.Host != "example.com" {
		t.Fatalf("end record %+v", end)
	}
}
