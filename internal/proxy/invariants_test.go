package proxy

// DESIGN.md §4's invariants and the tests that hold the proxy to them:
//
//  1. No request leaves without a policy decision, and none without an audit
//     record: TestEveryRequestIsDecidedAndAudited and
//     TestRecordedBeforeItLeaves (below), the record checks in every mode's
//     test, TestProxyKilledMidStreamLeavesATrace (cmd/slapenir: SIGKILL
//     mid-stream), TestAuditRoomForStreamsInFlight (a filling disk).
//  2. A real secret never reaches the agent, in any encoding, split or not,
//     nor an audit record: TestInjectionForItsHostAndRedactionBack,
//     TestLeaksInStreamsAndEncodings, TestInjectionThroughInterceptedTLS,
//     TestCurlTrustingCAPem, TestGitOverInterceptedTLS, and credProxy's
//     check of every audit file and proxy log line; the redactor's
//     property and fuzz tests.
//  3. A placeholder becomes the secret only for the credential's hosts, judged
//     by the destination, never an inner Host, and only inside TLS unless the
//     credential allows plain http: TestPlaceholderToForeignHostIsNotInjected,
//     TestInterceptDestinationIsTheAuthority, TestCredentialIsSentOnlyInsideTLS,
//     TestPortInHostEntryBindsTheCredential (cleartext_test.go).
//  4. Streaming is never broken: TestStreamingEachChunkFlushed,
//     TestStreamsAfterImmediateAnswer, TestTwoGigabytesInConstantMemory,
//     TestUpstreamDiesMidStream.
//  5. Without a valid certificate, nothing but /health:
//     TestMTLSRefusalsStillServeHealth, TestPlaintextOnTLSPort; a certificate
//     that stops being valid while its connections stay open:
//     TestBlindTunnelEndsWhenTheCertificateExpires,
//     TestCARotationReachesOpenConnections.
//  6. Bad input gets a clear error and the proxy keeps serving everyone else:
//     TestBadInputDoesNotStopOthers (below), TestMalformedRequests,
//     TestTargetBadScheme, TestSmuggling, TestBothLengthsCloseTheConnection,
//     TestPanicIsContainedToItsRequest.
//  7. Nothing a client or upstream sends crashes the proxy or lets a secret
//     out in any part of a response (status line, header names and values,
//     folded or not, 1xx, trailers, body, error messages):
//     TestEscapedFirstByteOfSecretDoesNotCrash, TestNothingOutsideTheBodyLeaks
//     and FuzzHostileUpstream (hostile_test.go, with the vault-loaded secret),
//     redact's TestNewKeepsNoReferenceToItsInput.
//  8. A credential is injected only where its configuration says:
//     TestInjectionOnlyWhereConfigured, TestCheckConfigInjectLocations.
//  9. The audit log cannot be rewritten, reordered or cut unnoticed without
//     the audit key: audit's TestKeyedChainResistsARewrite,
//     TestCheckpointDetectsTruncation, and TestProxyCommandFirstRun
//     (cmd/slapenir: the real binary's keyed, checkpointed log).
//  10. Noninterference: what an agent sees does not depend on a secret it
//     does not hold. Two vaults of one shape release every secret-free
//     stream at the same points: TestNoninterferenceThroughTheServer and
//     FuzzServerNoninterference (noninterference_test.go, two real proxies,
//     vault-loaded tokens, the attack's prefix probes), redact's
//     TestNoninterference, TestNoninterferencePrefixProbe,
//     FuzzNoninterference, TestWindowIsPublic, and TestFlushHoldsWhateverCouldGrow
//     (the public hold-back covers everything that could become a secret).
//     Between agents: TestExplainAnswersOnlyForTheCaller,
//     TestMetricsAreNotServedToAgents.
//  11. Rules fail closed: policy's TestNarrowedDenyFailsClosed,
//     TestDenyRulesFailClosedAgainstNginx, TestRulesJudgeWhatTheUpstreamReceives,
//     TestDenyRulesFailClosedInsideInterceptedTunnels,
//     TestDialerRefusesOtherPortsOfAPortBoundAddress, and e2e's
//     TestUpOpensOllamaNotTheHostLoopback; a certificate's end ends its
//     tunnels: TestBlindTunnelEndsWhenTheCertificateExpires.
//  12. No peer makes the proxy hold unbounded memory — decoders among it
//     (bomb_test.go): TestZstdWindowBombIsRefusedBeforeItsHead,
//     TestDecompressionBombsAreCut, TestDecodingMemoryIsBounded,
//     TestDecoderMemoryIsWithinItsCharge, and FuzzHostileUpstream's bombs;
//     HTTP/2 inside intercepted tunnels (h2attack_test.go):
//     TestH2StreamsPerTunnelAreBounded, TestH2RapidResetIsBounded,
//     TestH2ContinuationFloodIsCut, TestH2HugeHeaderListIsRefused; per
//     identity: TestRequestsInFlightPerIdentity, TestTunnelLimitPerIdentity,
//     TestDialGateBoundsDialsPerClientAndHost (and 6: one agent's share
//     does not starve its role, TestOneAgentsSlowStreamsDoNotStarveItsRole).

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/slapenir/slapenir/internal/policy"
)

func TestEveryRequestIsDecidedAndAudited(t *testing.T) {
	var reached atomic.Int32
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		reached.Add(1)
		io.WriteString(w, "ok")
	}))
	defer up.Close()
	cfg := loopbackConfig()
	cfg.Policy.Deny = policy.Hosts("denied.example")
	cfg.Policy.ConnectPorts = []int{portOf(t, up.URL)}
	p := startProxy(t, cfg)
	dead := "http://127.0.0.1:1"
	sends := []struct {
		mode, target string
		allowed      bool
	}{
		{"forward", up.URL, true},
		{"target", up.URL, true},
		{"forward", "http://denied.example:80", false},
		{"target", "http://denied.example:80", false},
		{"connect", "http://denied.example:443", false},
		{"forward", "http://169.254.169.254:80", false},
		{"forward", dead, true}, // allowed, and fails upstream
	}
	for _, s := range sends {
		resp := sendVia(t, p, s.mode, s.target)
		resp.Body.Close()
	}
	recs := p.records(t, len(sends))
	if len(recs) != len(sends) {
		for _, r := range recs {
			t.Logf("%s %s %s %d %s", r.Mode, r.Host, r.Decision, r.Status, r.Reason)
		}
		t.Fatalf("%d requests, %d audit records", len(sends), len(recs))
	}
	for i, r := range recs {
		if r.Decision == "" || r.Reason == "" {
			t.Fatalf("record %d has no decision or reason: %+v", i, r)
		}
	}
	if got := reached.Load(); got != 2 {
		t.Fatalf("the upstream saw %d requests, want only the 2 allowed ones", got)
	}
}

func TestBadInputDoesNotStopOthers(t *testing.T) {
	up := echoUpstream(t)
	p := startProxy(t, nil)
	bad := []string{
		"\x00\x01\x02garbage\r\n\r\n",
		"GET http://x/ HTTP/1.1\r\nHost: x\r\nX-Big: " + strings.Repeat("y", 1<<20) + "\r\n\r\n",
		"POST http://x/ HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab",
		"CONNECT :::: HTTP/1.1\r\nHost: ::::\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: x\r\nX-Target-URL: http://%zz\r\n\r\n",
	}
	for i, raw := range bad {
		out := rawRequest(t, p.addr, raw+"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
		if !strings.HasPrefix(out, "HTTP/1.1 4") {
			t.Fatalf("bad input %d: %.120q", i, out)
		}
		resp, err := p.client().Get(up.URL + fmt.Sprintf("/after-%d", i))
		if err != nil {
			t.Fatalf("after bad input %d the proxy stopped serving: %v", i, err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("after bad input %d: %d", i, resp.StatusCode)
		}
	}
}

// TestRecordedBeforeItLeaves: by the time an allowed request reaches its
// upstream, its write-ahead record is already in the audit log.
func TestRecordedBeforeItLeaves(t *testing.T) {
	var p *testProxy
	seen := make(chan bool, 2)
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		found := false
		for _, rec := range readAllRecords(t, p.auditFile) {
			found = found || rec.Phase == "start" && rec.Path == r.URL.Path && rec.Decision == decisionAllow
		}
		seen <- found
	}))
	defer up.Close()
	p = startProxy(t, nil)
	for _, path := range []string{"/first", "/second"} {
		resp, err := p.client().Get(up.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if !<-seen {
			t.Fatalf("%s reached the upstream before its write-ahead record was in the log", path)
		}
	}
}
