package relay_test

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/ollama/ollama/api"

	"github.com/slapenir/slapenir/internal/ollama/fake"
)

// These tests drive the helper with Ollama's own Go client, through the real
// proxy, to the fake Ollama: helper → proxy → Ollama as in the agent.

func TestHelperListAndShowReachOllamaUnaltered(t *testing.T) {
	ctx := testContext(t)
	c := startChain(t, fake.Options{Models: []string{"qwen2.5-coder:7b", "llama3"}})
	client := c.relay.ollamaClient()

	list, err := client.List(ctx)
	if err != nil {
		t.Fatalf("List through helper → proxy → fake: %v", err)
	}
	if len(list.Models) != 2 || list.Models[0].Name != "qwen2.5-coder:7b" {
		t.Fatalf("List = %+v, want the fake's two models", list.Models)
	}
	show, err := client.Show(ctx, &api.ShowRequest{Model: "qwen2.5-coder:7b"})
	if err != nil {
		t.Fatalf("Show: %v", err)
	}
	if show.Details.Family != "qwen2" {
		t.Errorf("Show details = %+v, want family qwen2", show.Details)
	}
	_, err = client.Show(ctx, &api.ShowRequest{Model: "missing:1b"})
	if statusOf(err) != http.StatusNotFound || !strings.Contains(err.Error(), "not found") {
		t.Errorf("Show of a missing model: %v, want Ollama's own 404 passed through", err)
	}

	fakeHost := hostOf(t, c.fake.URL())
	reqs := c.fake.Requests()
	if len(reqs) != 3 {
		t.Fatalf("fake saw %d requests, want 3", len(reqs))
	}
	for _, r := range reqs {
		if r.Host != fakeHost {
			t.Errorf("%s %s reached Ollama with Host %q, want the target %q", r.Method, r.Path, r.Host, fakeHost)
		}
		if r.Origin != "" {
			t.Errorf("%s %s reached Ollama with Origin %q; the relay must never add one", r.Method, r.Path, r.Origin)
		}
		if v := r.Header.Get("X-Target-URL"); v != "" {
			t.Errorf("%s %s reached Ollama with X-Target-URL %q; it is for the proxy only", r.Method, r.Path, v)
		}
	}
}

// TestHelperChatStreamsEachTokenSeparately holds each token in the fake until
// the client has received the one before: the chat only completes if every
// hop flushes each token on its own.
func TestHelperChatStreamsEachTokenSeparately(t *testing.T) {
	ctx := testContext(t)
	tokens := []string{"Go", " streams", " every", " token", "."}
	step := fake.NewLockstep(len(tokens))
	c := startChain(t, fake.Options{
		Tokens:      tokens,
		BeforeToken: step.BeforeToken,
	})
	var got []api.ChatResponse
	err := c.relay.ollamaClient().Chat(ctx, &api.ChatRequest{
		Model:    "qwen2.5-coder:7b",
		Messages: []api.Message{{Role: "user", Content: "hi"}},
	}, func(r api.ChatResponse) error {
		got = append(got, r)
		if !r.Done {
			step.Got(len(got) - 1)
		}
		return nil
	})
	if err != nil {
		t.Fatalf("Chat: %v (a hop that buffers never lets the second token out)", err)
	}
	if len(got) != len(tokens)+1 || !got[len(got)-1].Done {
		t.Fatalf("got %d responses, want %d tokens and a done one: %+v", len(got), len(tokens), got)
	}
	for i, tok := range tokens {
		if got[i].Message.Content != tok {
			t.Errorf("token %d = %q, want %q", i, got[i].Message.Content, tok)
		}
	}
}

func TestHelperGenerateWithoutStreaming(t *testing.T) {
	ctx := testContext(t)
	c := startChain(t, fake.Options{Tokens: []string{"func", " main", "()"}})
	var got []api.GenerateResponse
	err := c.relay.ollamaClient().Generate(ctx, &api.GenerateRequest{Model: "qwen2.5-coder:7b", Prompt: "main", Stream: ptr(false)},
		func(r api.GenerateResponse) error { got = append(got, r); return nil })
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].Response != "func main()" || !got[0].Done {
		t.Fatalf("Generate stream:false = %+v, want one done response \"func main()\"", got)
	}
}

func TestHelperPullProgress(t *testing.T) {
	ctx := testContext(t)
	c := startChain(t, fake.Options{})
	var got []api.ProgressResponse
	err := c.relay.ollamaClient().Pull(ctx, &api.PullRequest{Model: "llama3.2:1b"},
		func(p api.ProgressResponse) error { got = append(got, p); return nil })
	if err != nil {
		t.Fatal(err)
	}
	if len(got) < 4 || got[0].Status != "pulling manifest" || got[len(got)-1].Status != "success" {
		t.Fatalf("Pull progress = %+v, want pulling manifest … success", got)
	}
}

func TestHelperPassesErrorLineAfter200(t *testing.T) {
	ctx := testContext(t)
	c := startChain(t, fake.Options{TokenCount: 10, ErrorAfterTokens: 3, ErrorMessage: "runner crashed"})
	var tokens int
	err := c.relay.ollamaClient().Chat(ctx, &api.ChatRequest{Model: "qwen2.5-coder:7b", Messages: []api.Message{{Role: "user", Content: "hi"}}},
		func(api.ChatResponse) error { tokens++; return nil })
	if err == nil || err.Error() != "runner crashed" {
		t.Fatalf("Chat error = %v, want Ollama's error line \"runner crashed\" as is", err)
	}
	if tokens != 3 {
		t.Errorf("got %d tokens before the error, want 3", tokens)
	}
}

// TestHelperSSEChatCompletions reads the OpenAI-compatible stream with Go's
// HTTP client, one event at a time, each held back until the one before
// arrived.
func TestHelperSSEChatCompletions(t *testing.T) {
	ctx := testContext(t)
	tokens := []string{"a", "b", "c"}
	step := fake.NewLockstep(len(tokens))
	c := startChain(t, fake.Options{Tokens: tokens, BeforeToken: step.BeforeToken})
	body := `{"model":"qwen2.5-coder:7b","stream":true,"messages":[{"role":"user","content":"hi"}]}`
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, c.relay.helperURL.String()+"/v1/chat/completions", strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/event-stream") {
		t.Fatalf("Content-Type = %q, want text/event-stream", ct)
	}
	sc := bufio.NewScanner(resp.Body)
	var events []string
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, "data: ") {
			continue
		}
		events = append(events, strings.TrimPrefix(line, "data: "))
		for i, tok := range tokens {
			if len(events) == i+1 && strings.Contains(line, `"content":"`+tok+`"`) {
				step.Got(i)
			}
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatalf("reading the SSE stream: %v", err)
	}
	if len(events) < len(tokens)+1 || events[len(events)-1] != "[DONE]" {
		t.Fatalf("events = %q, want one per token and data: [DONE] last", events)
	}
}

// TestHelperReusesProxyConnections: sequential requests share one
// connection to the proxy instead of paying a (TLS) handshake each.
func TestHelperReusesProxyConnections(t *testing.T) {
	ctx := testContext(t)
	c := startChain(t, fake.Options{})
	client := c.relay.ollamaClient()
	for i := 0; i < 5; i++ {
		if _, err := client.List(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if n := c.proxy.ln.accepted.Load(); n != 1 {
		t.Errorf("proxy accepted %d connections for 5 sequential requests, want 1 reused", n)
	}
}

func TestHelperNamesTheFailedHop(t *testing.T) {
	ctx := testContext(t)
	t.Run("proxy down", func(t *testing.T) {
		c := startChain(t, fake.Options{})
		c.proxy.stop()
		_, err := c.relay.ollamaClient().List(ctx)
		if statusOf(err) != http.StatusBadGateway || !strings.Contains(err.Error(), "relay → proxy failed") || !strings.Contains(err.Error(), c.proxy.url) {
			t.Fatalf("List with the proxy down: %v, want 502 naming the relay → proxy hop and the proxy URL", err)
		}
	})
	t.Run("ollama down", func(t *testing.T) {
		c := startChain(t, fake.Options{})
		_ = c.fake.Close()
		_, err := c.relay.ollamaClient().List(ctx)
		if statusOf(err) != http.StatusBadGateway || !strings.Contains(err.Error(), "proxy → Ollama failed") || !strings.Contains(err.Error(), c.fake.URL()) {
			t.Fatalf("List with Ollama down: %v, want 502 naming the proxy → Ollama hop and Ollama's URL", err)
		}
		// The reply is Ollama's error shape with the proxy's reason kept.
		resp, err := http.Get(c.relay.helperURL.String() + "/api/tags")
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadGateway || !strings.HasPrefix(string(b), `{"error":"ollama helper: proxy → Ollama failed`) || !strings.Contains(string(b), `"reason":"upstream_failed"`) {
			t.Errorf("raw reply %d %s, want 502 {\"error\": …, \"reason\": \"upstream_failed\"}", resp.StatusCode, b)
		}
	})
}

// TestHelperStreamCutMidway: when Ollama or the proxy dies mid-answer, the
// client gets an error, never an answer that looks complete.
func TestHelperStreamCutMidway(t *testing.T) {
	for _, who := range []string{"ollama", "proxy"} {
		t.Run(who+" dies", func(t *testing.T) {
			ctx := testContext(t)
			var c *chain
			c = startChain(t, fake.Options{TokenCount: 10, BeforeToken: func(ctx context.Context, i int) error {
				if i < 3 {
					return nil
				}
				if who == "ollama" {
					return errors.New("crash")
				}
				go c.proxy.stop()
				<-ctx.Done()
				return ctx.Err()
			}})
			var got []api.ChatResponse
			err := c.relay.ollamaClient().Chat(ctx, &api.ChatRequest{Model: "qwen2.5-coder:7b", Messages: []api.Message{{Role: "user", Content: "hi"}}},
				func(r api.ChatResponse) error { got = append(got, r); return nil })
			if err == nil || !strings.Contains(err.Error(), "stream from Ollama at") || !strings.Contains(err.Error(), "broke") {
				t.Fatalf("Chat error = %v, want the helper's report that the stream broke", err)
			}
			if len(got) != 3 {
				t.Errorf("got %d responses before the cut, want the 3 tokens sent", len(got))
			}
			for _, r := range got {
				if r.Done {
					t.Errorf("got a done response %+v from a cut stream", r)
				}
			}
		})
	}
}

// TestHostAndOriginRules: Ollama on loopback accepts the Host the proxy
// sends for localhost and loopback targets; the relay adds no Origin, and an
// Origin the client sends itself meets Ollama's own rule unchanged.
func TestHostAndOriginRules(t *testing.T) {
	ctx := testContext(t)
	f := startFake(t, fake.Options{})
	p := startProxy(t, nil)
	_, port, _ := strings.Cut(hostOf(t, f.URL()), ":")
	for _, host := range []string{"127.0.0.1:" + port, "localhost:" + port, "http://localhost:" + port} {
		r := startRelay(t, p.url, "", host)
		if _, err := r.ollamaClient().List(ctx); err != nil {
			t.Errorf("OLLAMA_HOST=%s: List: %v, want the Host the proxy sends accepted by Ollama on loopback", host, err)
		}
	}
	for _, r := range f.Requests() {
		if r.Origin != "" {
			t.Errorf("request reached Ollama with Origin %q", r.Origin)
		}
		if r.Host != "127.0.0.1:"+port && r.Host != "localhost:"+port {
			t.Errorf("request reached Ollama with Host %q", r.Host)
		}
	}

	r := startRelay(t, p.url, "", "127.0.0.1:"+port)
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, r.helperURL.String()+"/api/tags", nil)
	req.Header.Set("Origin", "http://evil.example")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Errorf("client Origin http://evil.example: status %d, want Ollama's 403 passed through", resp.StatusCode)
	}
}

func TestHelperRefusesProxyRequests(t *testing.T) {
	c := startChain(t, fake.Options{})
	client := &http.Client{Transport: &http.Transport{Proxy: http.ProxyURL(c.relay.helperURL)}}
	resp, err := client.Get("http://example.com/")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest || !strings.Contains(string(b), "OLLAMA_API_BASE") {
		t.Errorf("absolute-form request to the helper: %d %s, want 400 explaining the port", resp.StatusCode, b)
	}
}

// TestHelperLongStreamsWhenUpstreamAnswersAtOnce points the helper straight
// at the fake (which ignores X-Target-URL), so only the relay's hop is under
// test: Ollama answers the moment it has the request body's last byte, and
// net/http must not close that body under the transport still reading its
// EOF, or the upstream connection is dropped mid-stream.
func TestHelperLongStreamsWhenUpstreamAnswersAtOnce(t *testing.T) {
	ctx := testContext(t)
	f := startFake(t, fake.Options{TokenCount: 2000})
	r := startRelay(t, f.URL(), "", hostOf(t, f.URL()))
	client := r.ollamaClient()
	for i := 0; i < 40; i++ {
		var n int
		var done bool
		err := client.Chat(ctx, &api.ChatRequest{Model: fake.DefaultModel, Messages: []api.Message{{Role: "user", Content: "hi"}}},
			func(resp api.ChatResponse) error { n++; done = resp.Done; return nil })
		if err != nil || n != 2001 || !done {
			t.Fatalf("stream %d: %v after %d responses (done %v), want 2000 tokens and done", i, err, n, done)
		}
	}
}
