package auditweb

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/slapenir/slapenir/internal/audit"
	"github.com/slapenir/slapenir/internal/proxy"
	"github.com/slapenir/slapenir/internal/secrets"
	"github.com/slapenir/slapenir/internal/testutil/proxytest"
)

// logWith writes records to a keyed audit log, as the proxy does: two
// agents, allowed and refused requests.
func logWith(t *testing.T) (*audit.Logger, string, []byte) {
	t.Helper()
	file := filepath.Join(t.TempDir(), "audit.jsonl")
	key := []byte("0123456789abcdef0123456789abcdef")
	l, err := audit.Open(audit.Options{File: file, Key: key})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	for i := range 20 {
		r := audit.Record{Time: time.Now().UTC(), RequestID: fmt.Sprint(i), Identity: "agent-a", Role: "default", Mode: "forward", Method: "GET",
			Host: "api.github.com", Port: 443, Path: fmt.Sprintf("/repos/%d", i), Decision: "allow", Reason: "allowlist", Status: 200}
		if i%3 == 0 {
			r.Identity, r.Host, r.Decision, r.Reason, r.Status = "agent-b", "sentry.io", "deny", "telemetry", 403
		}
		if i%5 == 0 {
			r.Decision, r.Reason, r.Status = "deny", "dlp_aws_access_key", 403
		}
		if r.Decision == "allow" && i%2 == 1 {
			// As the proxy records an injection: names, and a count of
			// values redacted from the response.
			r.Credentials, r.Redactions = []string{"github"}, i%4/3
		}
		if err := l.Write(&r); err != nil {
			t.Fatal(err)
		}
	}
	return l, file, key
}

// serve starts the page on a loopback listener, as audit serve does, and
// returns its URL and the run's token.
func serve(t *testing.T, file string, key []byte) (string, string) {
	t.Helper()
	hs := httptest.NewUnstartedServer(nil)
	s, err := New(Options{Files: []string{file}, Verify: audit.VerifyOptions{Key: key}, Poll: 50 * time.Millisecond, Hosts: ListenHosts(hs.Listener.Addr())})
	if err != nil {
		t.Fatal(err)
	}
	stop := make(chan struct{})
	go s.Run(stop)
	hs.Config.Handler = s.Handler()
	hs.Start()
	t.Cleanup(func() { close(stop); hs.Close() })
	return hs.URL, s.Token()
}

// get sends a GET carrying the token as a script would.
func get(ctx context.Context, t *testing.T, url, token string) *http.Response {
	t.Helper()
	req, _ := http.NewRequestWithContext(ctx, "GET", url, nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	return resp
}

// TestEventsStreamNewRecords: the API gives the records so far with the
// chain's state, and streams each record the proxy writes after.
func TestEventsStreamNewRecords(t *testing.T) {
	l, file, key := logWith(t)
	url, token := serve(t, file, key)
	resp := get(context.Background(), t, url+"/api/records", token)
	var got struct {
		Records []audit.Record
		Verify  VerifyState
	}
	json.NewDecoder(resp.Body).Decode(&got)
	resp.Body.Close()
	if len(got.Records) != 20 || !got.Verify.OK || !got.Verify.Keyed || got.Verify.Records != 20 {
		t.Fatalf("records %d, verify %+v", len(got.Records), got.Verify)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ev := get(ctx, t, url+"/api/events", token)
	defer ev.Body.Close()
	sc := bufio.NewScanner(ev.Body)
	sc.Scan() // ": connected"
	if err := l.Write(&audit.Record{Identity: "agent-new", Path: "/fresh", Decision: "allow"}); err != nil {
		t.Fatal(err)
	}
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "data: ") {
			var r audit.Record
			if err := json.Unmarshal([]byte(strings.TrimPrefix(line, "data: ")), &r); err != nil || r.Identity != "agent-new" || r.Seq != 21 {
				t.Fatalf("streamed %q (%v)", line, err)
			}
			return
		}
	}
	t.Fatalf("the stream ended: %v", sc.Err())
}

// TestChainStateShowsABreak: a log edited after it was written shows as
// broken.
func TestChainStateShowsABreak(t *testing.T) {
	l, file, key := logWith(t)
	l.Close()
	b, _ := os.ReadFile(file)
	os.WriteFile(file, []byte(strings.Replace(string(b), `"status":403`, `"status":200`, 1)), 0o600)
	s, err := New(Options{Files: []string{file}, Verify: audit.VerifyOptions{Key: key}})
	if err != nil {
		t.Fatal(err)
	}
	if s.state.OK || !strings.Contains(s.state.Detail, file) {
		t.Fatalf("a rewritten log: %+v", s.state)
	}
}

func chromium(t *testing.T) string {
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	t.Skip("no Chromium to test the page in (Debian: apt-get install chromium); .ci/run installs it")
	return ""
}

// browser is a fresh headless Chromium (its own profile: no cookie from
// another test) with the given extra flags, and an evaluator in its tab.
func browser(t *testing.T, flags ...chromedp.ExecAllocatorOption) (context.Context, func(js string) any) {
	t.Helper()
	bin := chromium(t)
	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(bin), chromedp.NoSandbox, chromedp.Headless,
		chromedp.DisableGPU, chromedp.WindowSize(1400, 800), chromedp.UserDataDir(t.TempDir()))
	actx, cancelA := chromedp.NewExecAllocator(context.Background(), append(opts, flags...)...)
	ctx, cancel := chromedp.NewContext(actx)
	ctx, cancelT := context.WithTimeout(ctx, 60*time.Second)
	t.Cleanup(func() { cancelT(); cancel(); cancelA() })
	eval := func(js string) any {
		t.Helper()
		v, err := chromedp.Run(ctx, chromedp.Evaluate[any](js))
		if err != nil {
			t.Fatalf("%s: %v", js, err)
		}
		return v
	}
	return ctx, eval
}

// TestPageInChromium: in a real headless browser the token URL logs in,
// and the page loads the log, shows a record the proxy writes within a
// second, filters, counts, and shows the chain verified. SLAPENIR_SCREENSHOT=FILE saves what it looks
// like (docs/audit-serve.png was made so).
func TestPageInChromium(t *testing.T) {
	chromium(t)
	l, file, key := logWith(t)
	url, token := serve(t, file, key)
	ctx, eval := browser(t)
	rows := func() int { return int(eval(`document.querySelectorAll("#records tbody tr").length`).(float64)) }
	input := func(id, value string) {
		t.Helper()
		eval(fmt.Sprintf(`{const e = document.getElementById(%q); e.value = %q; e.dispatchEvent(new Event("input")); true}`, id, value))
	}
	// The URL audit serve prints: the token becomes a cookie the page's
	// script cannot read, and leaves the address bar.
	if err := chromedp.Do(ctx, chromedp.Navigate(url+"/?token="+token), chromedp.WaitVisible(`#records tbody tr`)); err != nil {
		t.Fatal(err)
	}
	if loc := eval(`location.href`).(string); loc != url+"/" {
		t.Errorf("after the token URL the page is at %s, want %s/ (the token out of the address bar)", loc, url)
	}
	if c := eval(`document.cookie`).(string); c != "" {
		t.Errorf("the page's script can read the cookie %q; want it HttpOnly", c)
	}
	if _, err := chromedp.Run(ctx, chromedp.Poll[bool](`document.getElementById("live").textContent === "live"`, chromedp.WithPollingTimeout(10*time.Second))); err != nil {
		t.Fatalf("the event stream never connected: %v", err)
	}
	chain := eval(`document.getElementById("chain").textContent`).(string)
	if n := rows(); n != 20 || !strings.Contains(chain, "chain ok") || !strings.Contains(chain, "keyed") {
		t.Fatalf("page loaded %d rows, chain %q", n, chain)
	}

	// A record the proxy writes now appears within a second.
	start := time.Now()
	if err := l.Write(&audit.Record{Time: time.Now().UTC(), Identity: "agent-new", Role: "ci", Host: "pypi.org", Path: "/simple/", Decision: "allow", Reason: "allowlist", Status: 200}); err != nil {
		t.Fatal(err)
	}
	if _, err := chromedp.Run(ctx, chromedp.Poll[bool](`document.querySelector("#records tbody tr td:nth-child(2)").textContent === "agent-new"`,
		chromedp.WithPollingInterval(10*time.Millisecond), chromedp.WithPollingTimeout(5*time.Second))); err != nil {
		t.Fatalf("the new record never appeared: %v", err)
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("the new record took %s to appear, want under a second", d)
	} else {
		t.Logf("the new record appeared after %s", d.Round(time.Millisecond))
	}

	// Filters, and the counts over what they keep.
	input("f-identity", "agent-b")
	ids := eval(`[...document.querySelectorAll("#records tbody tr td:nth-child(2)")].map(td => td.textContent).join(",")`).(string)
	if ids != strings.TrimSuffix(strings.Repeat("agent-b,", 7), ",") {
		t.Fatalf("filtered by identity agent-b: %s", ids)
	}
	input("f-identity", "")
	input("f-decision", "deny")
	reasons := eval(`[...document.querySelectorAll("#by-reason tbody tr")].map(tr => tr.cells[0].textContent + "=" + tr.cells[1].textContent).join(" ")`).(string)
	if reasons != "telemetry=5 dlp_aws_access_key=4" {
		t.Fatalf("refusals by reason: %s", reasons)
	}
	if n := rows(); n != 9 {
		t.Fatalf("decision deny shows %d rows, want 9", n)
	}
	input("f-decision", "")
	input("f-host", "*.github.com")
	if n := rows(); n != 13 {
		t.Fatalf("host *.github.com shows %d rows, want 13", n)
	}
	input("f-host", "")
	if out := os.Getenv("SLAPENIR_SCREENSHOT"); out != "" {
		png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(out, png, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// realSecret is the value the proxy holds for the credential "github" in
// proxiedLog; it must appear nowhere the page or its API shows.
const realSecret = "ghp_AuditPageR3alValue0123456789abcdef"

// proxiedLog runs the real proxy with one credential, "github", for a
// loopback upstream that echoes the Authorization header it receives: one
// request with the placeholder has the real value injected, and the echo
// of it redacted from the response. It returns the proxy's audit log once
// that request's record is written.
func proxiedLog(t *testing.T) string {
	t.Helper()
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "you sent %s and %s", r.Header.Get("Authorization"), r.Header.Get("Authorization"))
	}))
	t.Cleanup(up.Close)
	creds, v := proxytest.Credentials(t, secrets.Config{Credentials: []secrets.CredentialConfig{{Name: "github", Env: "GITHUB_TOKEN", Hosts: []string{"127.0.0.1"}, PlaintextHTTP: true}}},
		map[string]string{"GITHUB_TOKEN": realSecret})
	p := proxytest.Start(t, proxy.Options{Credentials: creds}, nil)
	pu, _ := url.Parse(p.URL)
	client := &http.Client{Transport: &http.Transport{Proxy: http.ProxyURL(pu)}}
	req, _ := http.NewRequest("GET", up.URL+"/user", nil)
	req.Header.Set("Authorization", "Bearer "+v.Placeholders()[0].Placeholder)
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || strings.Contains(string(body), realSecret) {
		t.Fatalf("through the proxy: %d %q; want 200 with the value redacted", resp.StatusCode, body)
	}
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		b, _ := os.ReadFile(p.AuditFile)
		if strings.Contains(string(b), `"redactions"`) {
			return p.AuditFile
		}
		if time.Now().After(deadline) {
			t.Fatalf("no record with redactions in the proxy's log:\n%s", b)
		}
	}
}

// TestPageShowsCredentialsAndRedactions: a record the real proxy wrote for
// a request that had a credential injected and its value redacted from the
// response shows, in the API and in the page in a real browser, the
// credential's name and the count of redactions, and the value nowhere.
func TestPageShowsCredentialsAndRedactions(t *testing.T) {
	file := proxiedLog(t)
	page, token := serve(t, file, nil)
	resp := get(context.Background(), t, page+"/api/records", token)
	api, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if strings.Contains(string(api), realSecret) {
		t.Fatalf("the API shows the real value:\n%s", api)
	}
	var got struct{ Records []audit.Record }
	if err := json.Unmarshal(api, &got); err != nil {
		t.Fatal(err)
	}
	var rec audit.Record
	for _, r := range got.Records {
		if r.Phase == "" && len(r.Credentials) > 0 {
			rec = r
		}
	}
	if !slices.Equal(rec.Credentials, []string{"github"}) || rec.Redactions < 2 {
		t.Fatalf("the API's record: credentials %v, redactions %d; want [github] and 2 or more", rec.Credentials, rec.Redactions)
	}

	chromium(t)
	ctx, eval := browser(t)
	if err := chromedp.Do(ctx, chromedp.Navigate(page+"/?token="+token), chromedp.WaitVisible(`#records tbody tr`)); err != nil {
		t.Fatal(err)
	}
	// The cells under the "credentials" and "redacted" headings.
	cells := eval(`(() => {
		const heads = [...document.querySelectorAll("#records thead th")].map(th => th.textContent);
		const row = document.querySelector("#records tbody tr");
		return row.cells[heads.indexOf("credentials")].textContent + "|" + row.cells[heads.indexOf("redacted")].textContent;
	})()`).(string)
	if want := fmt.Sprintf("github|%d", rec.Redactions); cells != want {
		t.Errorf("the page shows credentials|redacted %q, want %q", cells, want)
	}
	if html := eval(`document.documentElement.outerHTML`).(string); strings.Contains(html, realSecret) {
		t.Errorf("the page shows the real value")
	}
}
