package auditweb

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// endpoints are every path the page and its API serve; each must be
// refused the same way.
var endpoints = []string{"/", "/index.html", "/app.js", "/style.css", "/api/records", "/api/events", "/nothing-here"}

// leaked says whether a body shows anything of the log (a record's
// identity) or of the page (its title, its script).
func leaked(body string) bool {
	return strings.Contains(body, "agent-a") || strings.Contains(body, "<title>") || strings.Contains(body, "EventSource")
}

// try sends a request and returns its status and (the start of) its body;
// redirects are not followed and the event stream is not waited on.
func try(t *testing.T, req *http.Request) (int, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(req.Context(), 2*time.Second)
	defer cancel()
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := client.Do(req.WithContext(ctx))
	if err != nil {
		t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	return resp.StatusCode, string(b)
}

// TestForeignHostIsRefused: a request whose Host is not a name the server
// listens on (a DNS-rebinding page's) is refused on every endpoint, even
// with the token; the listener's own names are served.
func TestForeignHostIsRefused(t *testing.T) {
	_, file, key := logWith(t)
	url, token := serve(t, file, key)
	_, port, _ := net.SplitHostPort(strings.TrimPrefix(url, "http://"))
	for _, host := range []string{"evil.example:" + port, "evil.example", "127.0.0.1.evil.example:" + port, "localhost.evil.example:" + port, "10.0.0.1:" + port} {
		for _, path := range append(endpoints, "/healthz") {
			req, _ := http.NewRequest("GET", url+path, nil)
			req.Host = host
			req.Header.Set("Authorization", "Bearer "+token)
			status, body := try(t, req)
			if status != http.StatusForbidden || leaked(body) || !strings.Contains(body, "not a name this server listens on") {
				t.Errorf("Host %q %s: %d %.100q, want 403 saying the Host is not this server's", host, path, status, body)
			}
		}
	}
	for _, host := range []string{"127.0.0.1:" + port, "localhost:" + port, "LOCALHOST.:" + port} {
		req, _ := http.NewRequest("GET", url+"/api/records", nil)
		req.Host = host
		req.Header.Set("Authorization", "Bearer "+token)
		if status, body := try(t, req); status != http.StatusOK || !strings.Contains(body, "agent-a") {
			t.Errorf("Host %q: %d %.100q, want the records", host, status, body)
		}
	}
}

// TestNoTokenIsRefused: without the token every endpoint (page, static
// files, records, event stream) answers 401 and nothing of the log;
// /healthz alone answers.
func TestNoTokenIsRefused(t *testing.T) {
	_, file, key := logWith(t)
	url, _ := serve(t, file, key)
	for _, path := range endpoints {
		req, _ := http.NewRequest("GET", url+path, nil)
		if status, body := try(t, req); status != http.StatusUnauthorized || leaked(body) || !strings.Contains(body, "needs the token") {
			t.Errorf("%s without the token: %d %.100q, want 401 saying it needs the token", path, status, body)
		}
	}
	req, _ := http.NewRequest("GET", url+"/healthz", nil)
	if status, body := try(t, req); status != http.StatusOK || body != "ok\n" {
		t.Errorf("/healthz: %d %q", status, body)
	}
}

// TestWrongTokenIsRefused: a wrong token, in any of the three places a
// token is read, opens nothing; a token one character off neither.
func TestWrongTokenIsRefused(t *testing.T) {
	_, file, key := logWith(t)
	url, token := serve(t, file, key)
	off := token[:len(token)-1] + string(rune('A'+(token[len(token)-1]+1)%26))
	for _, wrong := range []string{"wrong", off, token[:len(token)-1], token + "x", ""} {
		for _, path := range endpoints {
			asQuery, _ := http.NewRequest("GET", url+path+"?token="+wrong, nil)
			asBearer, _ := http.NewRequest("GET", url+path, nil)
			asBearer.Header.Set("Authorization", "Bearer "+wrong)
			asCookie, _ := http.NewRequest("GET", url+path, nil)
			asCookie.AddCookie(&http.Cookie{Name: "slapenir-audit-" + strings.Split(url, ":")[2], Value: wrong})
			for how, req := range map[string]*http.Request{"?token=": asQuery, "bearer": asBearer, "cookie": asCookie} {
				status, body := try(t, req)
				if status != http.StatusUnauthorized || leaked(body) {
					t.Errorf("%s with wrong token %q as %s: %d %.100q, want 401", path, wrong, how, status, body)
				}
			}
		}
	}
}

// TestTokenURLSetsCookieAndRedirects: the URL audit serve prints answers
// with an HttpOnly, SameSite=Strict cookie for the whole server and a
// redirect to the same address without the token; with that cookie alone
// the page, the records and the event stream are served.
func TestTokenURLSetsCookieAndRedirects(t *testing.T) {
	_, file, key := logWith(t)
	url, token := serve(t, file, key)
	resp, err := (&http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}).Get(url + "/?token=" + token + "&x=1")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	cookies := resp.Cookies()
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/?x=1" || len(cookies) != 1 {
		t.Fatalf("token URL: %d, Location %q, cookies %v; want 303 to /?x=1 with one cookie", resp.StatusCode, resp.Header.Get("Location"), cookies)
	}
	if c := cookies[0]; !c.HttpOnly || c.SameSite != http.SameSiteStrictMode || c.Path != "/" || c.Value != token {
		t.Errorf("cookie %s: want HttpOnly, SameSite=Strict, Path=/", c)
	}

	jar, _ := cookiejar.New(nil)
	browser := &http.Client{Jar: jar}
	page, err := browser.Get(url + "/?token=" + token)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(page.Body)
	page.Body.Close()
	if page.StatusCode != http.StatusOK || !strings.Contains(string(b), "<title>SLAPENIR audit</title>") || page.Request.URL.RawQuery != "" {
		t.Fatalf("after the redirect %s: %d %.100q", page.Request.URL, page.StatusCode, b)
	}
	for _, path := range []string{"/app.js", "/style.css"} {
		if r, err := browser.Get(url + path); err != nil || r.StatusCode != http.StatusOK {
			t.Fatalf("%s with the cookie: %v %v", path, r.Status, err)
		}
	}
	recs, err := browser.Get(url + "/api/records")
	if err != nil {
		t.Fatal(err)
	}
	var got struct{ Records []json.RawMessage }
	json.NewDecoder(recs.Body).Decode(&got)
	recs.Body.Close()
	if len(got.Records) != 20 {
		t.Fatalf("records with the cookie: %d, want 20", len(got.Records))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", url+"/api/events", nil)
	ev, err := browser.Do(req)
	if err != nil || ev.StatusCode != http.StatusOK {
		t.Fatalf("event stream with the cookie: %v %v", ev.Status, err)
	}
	ev.Body.Close()
}

// TestTokenURLRedirectsOnlyHere: the redirect after the token stays on
// this server, whatever the path looks like.
func TestTokenURLRedirectsOnlyHere(t *testing.T) {
	_, file, key := logWith(t)
	url, token := serve(t, file, key)
	for _, path := range []string{"//evil.example/", "/\\evil.example/", "/%2F%2Fevil.example"} {
		req, _ := http.NewRequest("GET", url+path+"?token="+token, nil)
		client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		loc := resp.Header.Get("Location")
		if resp.StatusCode != http.StatusSeeOther || !strings.HasPrefix(loc, "/") || strings.HasPrefix(loc, "//") || strings.HasPrefix(loc, "/\\") {
			t.Errorf("%s: %d to %q, want a redirect to a path of this server", path, resp.StatusCode, loc)
		}
	}
}

// TestCrossOriginIsRefused: with a valid token, a browser request made by
// another origin (another site, another port of this host, an opaque
// origin) is refused on every endpoint, reads as much as writes; the
// page's own requests, and those of clients that are not browsers, pass.
func TestCrossOriginIsRefused(t *testing.T) {
	_, file, key := logWith(t)
	url, token := serve(t, file, key)
	host := strings.TrimPrefix(url, "http://")
	ip, _, _ := net.SplitHostPort(host)
	foreign := []map[string]string{
		{"Origin": "http://evil.example"},
		{"Origin": "http://" + ip + ":1"},
		{"Origin": "https://" + host},
		{"Origin": "null"},
		{"Sec-Fetch-Site": "cross-site"},
		{"Sec-Fetch-Site": "same-site"},
		{"Sec-Fetch-Site": "cross-site", "Origin": url},
	}
	for _, headers := range foreign {
		for _, path := range endpoints {
			for _, method := range []string{"GET", "POST"} {
				req, _ := http.NewRequest(method, url+path, nil)
				req.Header.Set("Authorization", "Bearer "+token)
				for k, v := range headers {
					req.Header.Set(k, v)
				}
				if status, body := try(t, req); status != http.StatusForbidden || leaked(body) || !strings.Contains(body, "answers only itself") {
					t.Errorf("%s %s with %v: %d %.100q, want 403", method, path, headers, status, body)
				}
			}
		}
	}
	for _, headers := range []map[string]string{{}, {"Origin": url}, {"Sec-Fetch-Site": "same-origin"}, {"Sec-Fetch-Site": "none"}} {
		req, _ := http.NewRequest("GET", url+"/api/records", nil)
		req.Header.Set("Authorization", "Bearer "+token)
		for k, v := range headers {
			req.Header.Set(k, v)
		}
		if status, _ := try(t, req); status != http.StatusOK {
			t.Errorf("/api/records with %v: %d, want 200", headers, status)
		}
	}
}

// TestListenHosts: the names accepted follow the listener; a name no one
// chose is never among them.
func TestListenHosts(t *testing.T) {
	for _, tc := range []struct {
		addr     string
		want     []string
		mustNot  []string
		anyLocal bool
	}{
		{addr: "127.0.0.1:8088", want: []string{"127.0.0.1", "localhost", "::1"}},
		{addr: "[::1]:8088", want: []string{"::1", "localhost", "127.0.0.1"}},
		{addr: "192.0.2.7:8088", want: []string{"192.0.2.7"}, mustNot: []string{"localhost", "127.0.0.1"}},
		{addr: "0.0.0.0:8088", want: []string{"localhost", "127.0.0.1"}, mustNot: []string{"0.0.0.0"}},
	} {
		a, err := net.ResolveTCPAddr("tcp", tc.addr)
		if err != nil {
			t.Fatal(err)
		}
		got := ListenHosts(a)
		for _, w := range tc.want {
			if !slices.Contains(got, w) {
				t.Errorf("ListenHosts(%s) = %v, want %s among them", tc.addr, got, w)
			}
		}
		for _, n := range tc.mustNot {
			if slices.Contains(got, n) {
				t.Errorf("ListenHosts(%s) = %v, must not hold %s", tc.addr, got, n)
			}
		}
	}
}

// TestShortTokenIsRejected: a token the operator gives must be long enough
// not to be guessed.
func TestShortTokenIsRejected(t *testing.T) {
	_, file, _ := logWith(t)
	if _, err := New(Options{Files: []string{file}, Token: "short"}); err == nil || !strings.Contains(err.Error(), "at least") {
		t.Fatalf("a 5-character token: %v", err)
	}
}

// open navigates the tab to u and returns the document's status and text.
func open(ctx context.Context, t *testing.T, u string) (int64, string) {
	t.Helper()
	resp, err := chromedp.Run(ctx, chromedp.NavigateResponse(u))
	if err != nil {
		t.Fatalf("%s: %v", u, err)
	}
	body, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.body ? document.body.innerText : ""`))
	if err != nil {
		t.Fatal(err)
	}
	return resp.Status, body
}

// fetchRecords is the open page's script asking for the records, as the
// page (or a rebinding attacker's script) does: "STATUS BODY".
func fetchRecords(ctx context.Context, t *testing.T) string {
	t.Helper()
	got, err := chromedp.Run(ctx, chromedp.Evaluate[string](`fetch("/api/records").then(async r => r.status + " " + await r.text())`, chromedp.EvalAwaitPromise))
	if err != nil {
		t.Fatal(err)
	}
	return got
}

// TestPageInChromiumRefusesForeignHost: Chromium, made to resolve
// evil.example to the server (as a DNS-rebinding attack does), gets
// nothing at evil.example, even holding the token; while at the server's
// own address the same token shows the records.
func TestPageInChromiumRefusesForeignHost(t *testing.T) {
	chromium(t)
	_, file, key := logWith(t)
	url, token := serve(t, file, key)
	_, port, _ := net.SplitHostPort(strings.TrimPrefix(url, "http://"))
	ctx, eval := browser(t, chromedp.Flag("host-resolver-rules", "MAP evil.example 127.0.0.1"))
	evil := "http://evil.example:" + port
	for _, u := range []string{evil + "/?token=" + token, evil + "/", evil + "/api/records"} {
		status, body := open(ctx, t, u)
		if status != http.StatusForbidden || leaked(body) || !strings.Contains(body, "not a name this server listens on") || eval(`document.querySelector("#records") !== null`).(bool) {
			t.Errorf("at %s: %d %.200q, want 403 and the Host refusal only", u, status, body)
		}
	}
	// The same page's script asking for the records gets nothing either.
	if s := fetchRecords(ctx, t); !strings.HasPrefix(s, "403 ") || leaked(s) {
		t.Errorf("fetch from evil.example: %q, want 403", s)
	}
	// Control: the mapping reaches the server (the refusal above is its
	// answer), and its own address with the token shows the records.
	if err := chromedp.Do(ctx, chromedp.Navigate(url+"/?token="+token), chromedp.WaitVisible(`#records tbody tr`)); err != nil {
		t.Fatal(err)
	}
}

// TestPageInChromiumNeedsToken: Chromium opening the server's address
// without the token, or with a wrong one, gets a 401 and no record, and
// the page's script cannot fetch them; the token URL then shows them.
func TestPageInChromiumNeedsToken(t *testing.T) {
	chromium(t)
	_, file, key := logWith(t)
	url, token := serve(t, file, key)
	ctx, eval := browser(t)
	for _, u := range []string{url + "/", url + "/?token=" + strings.Repeat("A", len(token)), url + "/api/records"} {
		status, body := open(ctx, t, u)
		if status != http.StatusUnauthorized || leaked(body) || eval(`document.querySelector("#records") !== null`).(bool) {
			t.Errorf("%s: %d %.200q, want 401 and no records", u, status, body)
		}
	}
	if s := fetchRecords(ctx, t); !strings.HasPrefix(s, "401 ") || leaked(s) {
		t.Errorf("fetch without the token: %q, want 401", s)
	}
	if err := chromedp.Do(ctx, chromedp.Navigate(url+"/?token="+token), chromedp.WaitVisible(`#records tbody tr`)); err != nil {
		t.Fatal(err)
	}
	if n := eval(`document.querySelectorAll("#records tbody tr").length`).(float64); n != 20 {
		t.Errorf("with the token the page shows %v rows, want 20", n)
	}
}
