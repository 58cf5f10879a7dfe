package proxy

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/slapenir/slapenir/internal/config"
	"github.com/slapenir/slapenir/internal/policy"
	"github.com/slapenir/slapenir/internal/secrets"
)

// vaultFor opens a vault whose credential "github" (for 127.0.0.1) has the
// value value, the way slapenir proxy opens one.
func vaultFor(t *testing.T, value string) (*Credentials, func(), *atomic.Bool) {
	t.Helper()
	v, err := secrets.Open(secrets.Config{Credentials: []secrets.CredentialConfig{{Name: "github", Env: "GITHUB_TOKEN", Hosts: []string{"127.0.0.1"}, Placeholder: "DUMMY_GITHUB_TOKEN", PlaintextHTTP: true}}},
		secrets.Options{LookupEnv: func(k string) (string, bool) { return value, k == "GITHUB_TOKEN" }, Logf: t.Logf})
	if err != nil {
		t.Fatal(err)
	}
	c, err := NewCredentials(v)
	if err != nil {
		t.Fatal(err)
	}
	closed := &atomic.Bool{}
	return c, func() { closed.Store(true); v.Close() }, closed
}

// TestReloadKeepsStreamsAndAppliesToNewRequests: a stream open across a
// reload completes under the configuration it started with (its record
// names that version, its credential stays the old one until it ends);
// new requests get the new policy and credentials; a reload the proxy
// cannot apply changes nothing.
func TestReloadKeepsStreamsAndAppliesToNewRequests(t *testing.T) {
	const oldValue, newValue = "ghp_OldValueOfTheToken0123456789abcdef", "ghp_NewValueOfTheToken0123456789abcdef"
	release := make(chan struct{})
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		auth := strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")
		which := map[string]string{oldValue: "old", newValue: "new"}[auth]
		w.Header().Set("Content-Type", "application/x-ndjson")
		fmt.Fprintf(w, "{\"credential\":%q}\n", which)
		w.(http.Flusher).Flush()
		if r.URL.Path == "/stream" {
			<-release
			// The old value, sent after the reload, is still redacted.
			fmt.Fprintf(w, "{\"echo\":%q}\n", oldValue)
		}
	}))
	defer up.Close()
	oldCreds, closeOld, oldClosed := vaultFor(t, oldValue)
	p := startProxyOpts(t, loopbackConfig(), Options{Credentials: oldCreds})
	oldVersion := p.srv.Version()
	get := func(path string) (*http.Response, error) {
		req, _ := http.NewRequest("GET", up.URL+path, nil)
		req.Header.Set("Authorization", "Bearer DUMMY_GITHUB_TOKEN")
		return p.client().Do(req)
	}
	stream, err := get("/stream")
	if err != nil {
		t.Fatal(err)
	}
	defer stream.Body.Close()
	buf := make([]byte, 64)
	n, _ := stream.Body.Read(buf)
	if got := string(buf[:n]); got != "{\"credential\":\"old\"}\n" {
		t.Fatalf("stream's first line %q", got)
	}

	// Reload: the upstream's /denied path is refused now, and the
	// credential has a new value.
	next := loopbackConfig()
	next.Policy.Deny = []policy.Rule{{Host: "127.0.0.1", Paths: []string{"/denied"}}}
	newCreds, closeNew, _ := vaultFor(t, newValue)
	defer closeNew()
	// The first state's vault is the caller's; hand this one the closer to
	// see when the proxy lets it go.
	p.srv.cur.Load().closeCreds = closeOld
	if err := p.srv.Reload(next, newCreds, closeNew); err != nil {
		t.Fatal(err)
	}
	newVersion := p.srv.Version()
	if newVersion == oldVersion {
		t.Fatal("the reloaded configuration has the old version")
	}
	resp, err := get("/fresh")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(b) != "{\"credential\":\"new\"}\n" {
		t.Fatalf("a request after the reload got %q, want the new credential", b)
	}
	if resp, err := get("/denied"); err != nil || resp.StatusCode != 403 {
		t.Fatalf("a request the new policy refuses: %v %v", resp.StatusCode, err)
	}
	if oldClosed.Load() {
		t.Fatal("the old vault was closed while a stream under it was still open")
	}

	// A reload the proxy cannot apply is refused whole.
	bad := loopbackConfig()
	bad.Listen = "127.0.0.1:1"
	bad.Policy.Default = "deny"
	if err := p.srv.Reload(bad, nil, nil); err == nil || !strings.Contains(err.Error(), "listen changed") {
		t.Fatalf("reload changing listen: %v, want it refused naming listen", err)
	}
	if p.srv.Version() != newVersion {
		t.Fatal("a refused reload changed the version")
	}
	if resp, err := get("/still-served"); err != nil || resp.StatusCode != 200 {
		t.Fatalf("after a refused reload: %v %v, want the last good configuration serving", resp.StatusCode, err)
	}

	close(release)
	rest, err := io.ReadAll(stream.Body)
	if err != nil || string(rest) != "{\"echo\":\"[REDACTED]\"}\n" {
		t.Fatalf("the stream across the reload ended with %q, %v; want it whole, the old value redacted", rest, err)
	}
	recs := p.records(t, 4)
	byPath := map[string]string{}
	for _, r := range recs {
		byPath[r.Path] = r.Config + " " + r.Decision
	}
	for path, want := range map[string]string{"/stream": oldVersion + " allow", "/fresh": newVersion + " allow", "/denied": newVersion + " deny", "/still-served": newVersion + " allow"} {
		if byPath[path] != want {
			t.Errorf("record of %s: %q, want %q", path, byPath[path], want)
		}
	}
	// The old configuration is closed once its last request is done.
	for deadline := time.Now().Add(5 * time.Second); !oldClosed.Load() && time.Now().Before(deadline); {
		time.Sleep(5 * time.Millisecond)
	}
	if !oldClosed.Load() {
		t.Error("the replaced vault was never closed")
	}
}

// TestReloadUnderLoad: requests keep flowing while the configuration is
// reloaded again and again; each is answered whole by one configuration
// or the other, none fails.
func TestReloadUnderLoad(t *testing.T) {
	up := echoUpstream(t)
	allow, deny := loopbackConfig(), loopbackConfig()
	deny.Policy.Deny = policy.Hosts("127.0.0.1")
	p := startProxy(t, allow)
	var wg sync.WaitGroup
	var ok, refused, failed atomic.Int64
	stop := make(chan struct{})
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := p.client()
			for {
				select {
				case <-stop:
					return
				default:
				}
				resp, err := c.Get(up.URL + "/load")
				if err != nil {
					failed.Add(1)
					t.Errorf("request during reloads: %v", err)
					return
				}
				b, err := io.ReadAll(resp.Body)
				resp.Body.Close()
				switch {
				case err == nil && resp.StatusCode == 200 && string(b) == "GET /load body=":
					ok.Add(1)
				case err == nil && resp.StatusCode == 403:
					refused.Add(1)
				default:
					failed.Add(1)
					t.Errorf("request during reloads: %d %q %v", resp.StatusCode, b, err)
				}
			}
		}()
	}
	for i := range 40 {
		next := allow
		if i%2 == 0 {
			next = deny
		}
		if err := p.srv.Reload(next, nil, nil); err != nil {
			t.Fatal(err)
		}
		// Let some requests through under each configuration.
		for start := ok.Load() + refused.Load(); ok.Load()+refused.Load() < start+3 && failed.Load() == 0; {
			time.Sleep(time.Millisecond)
		}
	}
	close(stop)
	wg.Wait()
	if ok.Load() == 0 || refused.Load() == 0 {
		t.Fatalf("%d allowed, %d refused: want both configurations to have served", ok.Load(), refused.Load())
	}
	t.Logf("%d allowed, %d refused across 40 reloads", ok.Load(), refused.Load())
}

// TestRateBucketsSurviveAReload: a reload that keeps a role's rates keeps
// its agents' buckets (no fresh burst for everyone); changing the rates
// starts them afresh.
func TestRateBucketsSurviveAReload(t *testing.T) {
	up := echoUpstream(t)
	limited := func(burst int) *config.Config {
		c := loopbackConfig()
		c.Limits.RatePerSecond, c.Limits.RateBurst = 0.001, burst
		return c
	}
	p := startProxy(t, limited(1))
	status := func() int {
		resp, err := p.client().Get(up.URL + "/")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if status() != 200 {
		t.Fatal("first request")
	}
	same := limited(1)
	same.Policy.Deny = policy.Hosts("elsewhere.example")
	if err := p.srv.Reload(same, nil, nil); err != nil {
		t.Fatal(err)
	}
	if got := status(); got != 429 {
		t.Fatalf("after a reload that kept the rates: %d, want 429 (the bucket is still empty)", got)
	}
	if err := p.srv.Reload(limited(2), nil, nil); err != nil {
		t.Fatal(err)
	}
	if got := status(); got != 200 {
		t.Fatalf("after a reload that changed the burst: %d, want 200 from a fresh bucket", got)
	}
}
