package proxy

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/slapenir/slapenir/internal/audit"
	"github.com/slapenir/slapenir/internal/config"
	"github.com/slapenir/slapenir/internal/dlp"
	"github.com/slapenir/slapenir/internal/secrets"
	"github.com/slapenir/slapenir/internal/testutil/dlpsamples"
)

// dlpFixture is a proxy with dlp on and a format-preserving credential
// for 127.0.0.1 loaded through the vault; its upstream counts what reaches
// it.
type dlpFixture struct {
	p           *testProxy
	up          *httptest.Server
	hits        *atomic.Int64
	placeholder string
	value       string
}

func startDLPProxy(t *testing.T, mode string, exempt ...string) *dlpFixture {
	t.Helper()
	hits := &atomic.Int64{}
	value := "ghp_" + strings.Repeat("Rv7q", 9) // a GitHub-shaped real value
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, err := io.ReadAll(r.Body)
		if err != nil {
			return // cut by the proxy
		}
		hits.Add(1)
		fmt.Fprintf(w, "got %d bytes, body=%v, injected=%v", len(b), strings.Contains(string(b), value), strings.Contains(r.Header.Get("Authorization")+r.URL.RawQuery+string(b), value))
	}))
	t.Cleanup(up.Close)
	v, creds := vaultCredentials(t, secrets.CredentialConfig{Name: "github", Env: "GITHUB_TOKEN", Hosts: []string{"127.0.0.1"}, FormatPreserving: true, Inject: everywhere, PlaintextHTTP: true},
		value, []byte("0123456789abcdef0123456789abcdef"))
	cfg := loopbackConfig()
	cfg.DLP = config.DLP{Mode: mode, Exempt: exempt}
	p := startProxyOpts(t, cfg, Options{Credentials: creds})
	ph := v.Placeholders()[0].Placeholder
	if !strings.HasPrefix(ph, "ghp_") || len(ph) != len(value) {
		t.Fatalf("the format-preserving placeholder %q is not shaped like the value", ph)
	}
	return &dlpFixture{p: p, up: up, hits: hits, placeholder: ph, value: value}
}

// chunked sends a POST whose body is parts, each its own chunk in its own
// write, and returns the proxy's answer.
func (f *dlpFixture) chunked(t *testing.T, parts ...string) *http.Response {
	t.Helper()
	c, err := net.Dial("tcp", f.p.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	fmt.Fprintf(c, "POST %s/upload HTTP/1.1\r\nHost: %s\r\nTransfer-Encoding: chunked\r\n\r\n", f.up.URL, strings.TrimPrefix(f.up.URL, "http://"))
	for _, p := range parts {
		fmt.Fprintf(c, "%x\r\n%s\r\n", len(p), p)
		time.Sleep(5 * time.Millisecond) // separate writes, separate reads
	}
	io.WriteString(c, "0\r\n\r\n")
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body = io.NopCloser(strings.NewReader(string(b)))
	return resp
}

// TestDLPCatchesEachRuleEverywhere: every rule's sample, in a header, in
// the query (escaped as a client escapes it), in a small body and in a
// chunked body split inside the secret, is refused with 403 dlp_<rule>
// and, but for the streamed body, nothing reaches the upstream; the
// records name the rule and never the value.
func TestDLPCatchesEachRuleEverywhere(t *testing.T) {
	f := startDLPProxy(t, config.DLPEnforce)
	c := f.p.client()
	big := strings.Repeat("x", 70<<10) // past the whole-body limit: streamed
	for _, s := range dlpsamples.Secrets {
		want := "dlp_" + s.Rule
		send := map[string]func() *http.Response{
			"header": func() *http.Response {
				req, _ := http.NewRequest("GET", f.up.URL+"/h", nil)
				req.Header.Set("X-Note", s.Text)
				resp, err := c.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				return resp
			},
			"query": func() *http.Response {
				resp, err := c.Get(f.up.URL + "/q?note=" + url.QueryEscape(s.Text))
				if err != nil {
					t.Fatal(err)
				}
				return resp
			},
			"body": func() *http.Response {
				resp, err := c.Post(f.up.URL+"/b", "text/plain", strings.NewReader("note: "+s.Text+"\n"))
				if err != nil {
					t.Fatal(err)
				}
				return resp
			},
		}
		for where, do := range send {
			before := f.hits.Load()
			resp := do()
			e := decodeError(t, resp)
			if resp.StatusCode != 403 || e.Reason != want {
				t.Errorf("%s in the %s: %d %q, want 403 %s", s.Text, where, resp.StatusCode, e.Reason, want)
			}
			if strings.Contains(e.Error, s.Text) {
				t.Errorf("the refusal quotes the value: %q", e.Error)
			}
			if f.hits.Load() != before {
				t.Errorf("%s in the %s reached the upstream", s.Rule, where)
			}
		}
		// Split in the middle of the secret, after more than the
		// whole-body limit: the stream is cut before the secret leaves.
		half := len(s.Text) / 2
		before := f.hits.Load()
		resp := f.chunked(t, big, "note: "+s.Text[:half], s.Text[half:]+"\n", "more")
		e := decodeError(t, resp)
		if resp.StatusCode != 403 || e.Reason != want {
			t.Errorf("%s split across chunks: %d %q, want 403 %s", s.Rule, resp.StatusCode, e.Reason, want)
		}
		if f.hits.Load() != before {
			t.Errorf("%s split across chunks: the upstream got a whole body", s.Rule)
		}
	}
	recs := readAllRecords(t, f.p.auditFile)
	audit, _ := os.ReadFile(f.p.auditFile)
	for _, s := range dlpsamples.Secrets {
		if strings.Contains(string(audit), s.Text) || strings.Contains(string(audit), s.Text[:len(s.Text)/2]) {
			t.Errorf("the audit log holds (part of) the %s sample", s.Rule)
		}
	}
	refused := 0
	for _, r := range recs {
		if strings.HasPrefix(r.Reason, "dlp_") && r.Decision == "deny" && len(r.DLP) == 1 && "dlp_"+r.DLP[0] == r.Reason {
			refused++
		}
	}
	if want := 4 * len(dlpsamples.Secrets); refused != want {
		t.Errorf("%d records of dlp refusals naming their rule, want %d", refused, want)
	}
}

// TestDLPNeverFiresOnPlaceholders: the format-preserving placeholder is
// shaped exactly like a GitHub token; sent in every location it is
// injected, never refused.
func TestDLPNeverFiresOnPlaceholders(t *testing.T) {
	f := startDLPProxy(t, config.DLPEnforce)
	c := f.p.client()
	req, _ := http.NewRequest("POST", f.up.URL+"/p?token="+f.placeholder, strings.NewReader(`{"token":"`+f.placeholder+`"}`))
	req.Header.Set("Authorization", "Bearer "+f.placeholder)
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.HasSuffix(string(b), "body=true, injected=true") {
		t.Fatalf("placeholders everywhere: %d %q, want 200 with the value injected", resp.StatusCode, b)
	}
	// And streamed.
	resp = f.chunked(t, strings.Repeat("y", 70<<10), "token="+f.placeholder[:10], f.placeholder[10:])
	if resp.StatusCode != 200 {
		t.Fatalf("a placeholder split across chunks: %d", resp.StatusCode)
	}
	// The real value, were an agent to hold it, is a finding.
	resp, err = c.Get(f.up.URL + "/leak?v=" + f.value)
	if err != nil {
		t.Fatal(err)
	}
	if e := decodeError(t, resp); resp.StatusCode != 403 || e.Reason != "dlp_github_token" {
		t.Fatalf("the real value sent by the agent: %d %q", resp.StatusCode, e.Reason)
	}
}

// TestDLPReportAndExempt: report mode lets the request through and
// records the rule; an exempt host is not scanned at all.
func TestDLPReportAndExempt(t *testing.T) {
	f := startDLPProxy(t, config.DLPReport)
	sample := dlpsamples.Secrets[0]
	resp, err := f.p.client().Get(f.up.URL + "/r?k=" + sample.Text)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	resp = f.chunked(t, strings.Repeat("z", 70<<10)+" ", sample.Text[:5], sample.Text[5:]+" ")
	if resp.StatusCode != 200 {
		t.Fatalf("report mode, streamed: %d", resp.StatusCode)
	}
	recs := f.p.records(t, 2)
	for _, r := range recs[:2] {
		if len(r.DLP) != 1 || r.DLP[0] != sample.Rule {
			t.Errorf("report-mode record of %s: decision %q reason %q dlp %v", r.Path, r.Decision, r.Reason, r.DLP)
		}
	}
	if r := recs[0]; r.Decision != "report" || r.Reason != "dlp_"+sample.Rule || r.Path != "/r?k=[dlp:"+sample.Rule+"]" {
		t.Errorf("report-mode record of a finding in the URL: %q %q %q", r.Decision, r.Reason, r.Path)
	}

	ex := startDLPProxy(t, config.DLPEnforce, "127.0.0.1")
	resp, err = ex.p.client().Get(ex.up.URL + "/x?k=" + sample.Text)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 || len(ex.p.lastRecord(t, 1).DLP) != 0 {
		t.Fatalf("a request to an exempt host: %d", resp.StatusCode)
	}
}

// TestNothingOverwritesARefusal: a finding noted after the exchange was
// refused adds the rule to the record and leaves its reason alone.
func TestNothingOverwritesARefusal(t *testing.T) {
	sc := dlp.New(nil)
	body := sc.NewReader(strings.NewReader("x "+dlpsamples.Secrets[0].Text+" y"), false)
	io.Copy(io.Discard, body)
	x := &exchange{p: plan{dlp: dlpEnforce}}
	x.dlp.body = body
	x.fail(502, "upstream_failed", "the upstream went away")
	(&Server{}).noteDLP(x)
	if x.out.reason != "upstream_failed" || x.out.decision != "error" || len(x.out.dlp) != 1 {
		t.Fatalf("record after a refusal and a finding: %q %q %v", x.out.decision, x.out.reason, x.out.dlp)
	}
	// Without the refusal the finding decides.
	y := &exchange{p: x.p}
	y.dlp.body = body
	(&Server{}).noteDLP(y)
	if y.out.reason != "dlp_"+dlpsamples.Secrets[0].Rule || y.out.decision != "deny" {
		t.Fatalf("a finding in a streamed body: %q %q", y.out.decision, y.out.reason)
	}
}

// TestDLPCutAfterTheUpstreamAnswered: an upstream that answers before it
// has read the request body (full duplex) has sent its 200 by the time the
// agent sends the secret; the stream is still cut before the secret
// leaves, and the record says the request was refused by dlp, not allowed
// with the upstream's 200.
func TestDLPCutAfterTheUpstreamAnswered(t *testing.T) {
	f := startDLPProxy(t, config.DLPEnforce)
	got := make(chan string, 1)
	duplex := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rc := http.NewResponseController(w)
		if err := rc.EnableFullDuplex(); err != nil {
			t.Error(err)
		}
		w.WriteHeader(http.StatusOK)
		_ = rc.Flush()
		b, _ := io.ReadAll(r.Body)
		got <- string(b)
	}))
	t.Cleanup(duplex.Close)
	s := dlpsamples.Secrets[0]

	c, err := net.Dial("tcp", f.p.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	fmt.Fprintf(c, "POST %s/duplex HTTP/1.1\r\nHost: %s\r\nTransfer-Encoding: chunked\r\n\r\n", duplex.URL, strings.TrimPrefix(duplex.URL, "http://"))
	first := strings.Repeat("x", 1000)
	fmt.Fprintf(c, "%x\r\n%s\r\n", len(first), first)
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, nil)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("the upstream's early answer: %v %v", resp, err)
	}
	// Only now the secret, and the end of the body.
	leak := "note: " + s.Text + "\n"
	fmt.Fprintf(c, "%x\r\n%s\r\n0\r\n\r\n", len(leak), leak)
	_, _ = io.Copy(io.Discard, resp.Body)

	select {
	case b := <-got:
		if strings.Contains(b, s.Text) {
			t.Errorf("the upstream got the %s sample", s.Rule)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the upstream never finished reading the body")
	}
	var rec *audit.Record
	for deadline := time.Now().Add(5 * time.Second); rec == nil && time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		for _, r := range readRecords(t, f.p.auditFile) {
			if r.Path == "/duplex" {
				rec = &r
			}
		}
	}
	if rec == nil {
		t.Fatal("no record of the request")
	}
	if rec.Decision != "deny" || rec.Reason != "dlp_"+s.Rule || !strings.Contains(rec.Error, "cut there") {
		t.Errorf("record: decision %q reason %q error %q, want deny dlp_%s, cut", rec.Decision, rec.Reason, rec.Error, s.Rule)
	}
}
