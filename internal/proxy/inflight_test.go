package proxy

import (
	"bufio"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/slapenir/slapenir/internal/config"
	"github.com/slapenir/slapenir/internal/pki/devca"
)

// streamingUpstream answers /hold?id=N with a first line, flushed, and
// then holds the response open until release(N) (or until the client
// goes): an LLM answer that takes minutes. Anything else is answered at
// once. Each held stream has its own release, so a test ends the one it
// means and not whichever handler happens to be waiting.
type streamingUpstream struct {
	*httptest.Server
	mu       sync.Mutex
	releases map[string]chan struct{}
}

// releaseOf is the channel that ends the held stream id.
func (u *streamingUpstream) releaseOf(id string) chan struct{} {
	u.mu.Lock()
	defer u.mu.Unlock()
	c := u.releases[id]
	if c == nil {
		c = make(chan struct{})
		u.releases[id] = c
	}
	return c
}

// release ends the held stream id.
func (u *streamingUpstream) release(id string) { close(u.releaseOf(id)) }

func newStreamingUpstream(t *testing.T) *streamingUpstream {
	t.Helper()
	u := &streamingUpstream{releases: map[string]chan struct{}{}}
	u.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/hold" {
			io.WriteString(w, "fast\n")
			return
		}
		w.Header().Set("Content-Type", "application/x-ndjson")
		io.WriteString(w, "{\"token\":\"first\"}\n")
		w.(http.Flusher).Flush()
		select {
		case <-u.releaseOf(r.URL.Query().Get("id")):
			io.WriteString(w, "{\"done\":true}\n")
		case <-r.Context().Done():
		}
	}))
	t.Cleanup(u.Close)
	return u
}

// holdStream starts a held response through c and returns it once its
// first line has arrived, so the request is known to be in flight.
func holdStream(t *testing.T, c *http.Client, url string) *http.Response {
	t.Helper()
	resp, err := c.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("held stream: status %d", resp.StatusCode)
	}
	line, err := bufio.NewReader(resp.Body).ReadString('\n')
	if err != nil || !strings.Contains(line, "first") {
		t.Fatalf("held stream: first line %q, %v", line, err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	return resp
}

// TestRequestsInFlightPerIdentity (invariant 12): the rate limit bounds how
// many requests an agent starts, not how many it holds open, and each open
// stream holds a goroutine, buffers and an upstream connection. One
// identity at its max_requests_per_identity is refused with 429 through the
// one refusal shape, audited and counted, as a forward request and an
// X-Target-URL one (an intercepted request passes the same admit, in
// serveInner, and is not exercised here); another identity is served meanwhile; the first is served again once
// one of its streams ends; a role's own limit applies to its agents.
func TestRequestsInFlightPerIdentity(t *testing.T) {
	up := newStreamingUpstream(t)
	wide := 3
	f := startMTLSProxyWith(t, nil, func(c *config.Config) {
		c.Limits.MaxRequestsPerIdentity = 2
		c.Roles = []config.Role{{Name: "wide", Identities: []string{"agent-wide"}, Policy: c.Policy, Limits: config.RoleLimits{MaxRequestsPerIdentity: &wide}}}
	})
	a := f.client(f.clientCert(t, devca.Request{CommonName: "agent-a"}))
	b := f.client(f.clientCert(t, devca.Request{CommonName: "agent-b"}))
	w := f.client(f.clientCert(t, devca.Request{CommonName: "agent-wide"}))

	first := holdStream(t, a, up.URL+"/hold?id=a1")
	holdStream(t, a, up.URL+"/hold?id=a2")

	refused := []*http.Response{}
	resp, err := a.Get(up.URL + "/fast")
	if err != nil {
		t.Fatal(err)
	}
	refused = append(refused, resp)
	refused = append(refused, f.targetRequest(t, a, up.URL+"/fast"))
	for i, resp := range refused {
		if resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") == "" {
			t.Fatalf("agent-a's request %d past its 2 in flight: status %d, Retry-After %q; want 429 with Retry-After", i, resp.StatusCode, resp.Header.Get("Retry-After"))
		}
		if e := decodeError(t, resp); e.Reason != "too_many_requests_in_flight" || !strings.Contains(e.Error, "max_requests_per_identity") {
			t.Fatalf("agent-a's request %d: %+v, want reason too_many_requests_in_flight naming max_requests_per_identity", i, e)
		}
	}

	// Another agent is not held up by agent-a's streams.
	if resp, err := b.Get(up.URL + "/fast"); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("agent-b while agent-a is at its limit: %v %v", resp, err)
	} else {
		resp.Body.Close()
	}
	// A role's own limit: agent-wide may hold three.
	for i := range 3 {
		holdStream(t, w, fmt.Sprintf("%s/hold?id=wide%d", up.URL, i))
	}
	if resp, err := w.Get(up.URL + "/fast"); err != nil || resp.StatusCode != http.StatusTooManyRequests {
		t.Fatalf("agent-wide's fourth request: %v %v, want 429 (its role allows 3)", resp, err)
	} else {
		resp.Body.Close()
	}

	// One of agent-a's streams ends; its response is framed in chunks, so
	// the client sees its end only after the handler returned and gave its
	// place back.
	up.release("a1")
	if rest, err := io.ReadAll(first.Body); err != nil || !strings.Contains(string(rest), "done") {
		t.Fatalf("the released stream: %q, %v", rest, err)
	}
	if resp, err := a.Get(up.URL + "/fast"); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("agent-a after one of its streams ended: %v %v, want 200", resp, err)
	} else {
		resp.Body.Close()
	}

	// Six outcome records at least: three refusals, agent-b's request, the
	// released stream and agent-a's request after it.
	var denied int
	for _, r := range f.records(t, 6) {
		if r.Reason != "too_many_requests_in_flight" {
			continue
		}
		denied++
		if r.Decision != "deny" || r.Status != http.StatusTooManyRequests || (r.Identity != "agent-a" && r.Identity != "agent-wide") {
			t.Fatalf("record of a refusal: %+v", r)
		}
	}
	if denied != 3 {
		t.Fatalf("%d records of too_many_requests_in_flight, want 3", denied)
	}
	m := f.scrape(t)
	if !strings.Contains(m, `reason="too_many_requests_in_flight"`) {
		t.Fatalf("metrics do not count the refusals by reason:\n%.2000s", m)
	}
}
