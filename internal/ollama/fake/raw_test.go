package fake_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/slapenir/slapenir/internal/ollama/fake"
)

// These tests speak HTTP to the fake directly, as curl or a relay would.

// request is a request to the fake that ends with the test.
func request(t *testing.T, method, url, body string) *http.Request {
	t.Helper()
	req, err := http.NewRequestWithContext(testContext(t), method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	return req
}

// do sends req; the response body is closed when the test ends.
func do(t *testing.T, req *http.Request) *http.Response {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = resp.Body.Close() })
	return resp
}

// fetch sends req and reads the whole response body.
func fetch(t *testing.T, req *http.Request) (*http.Response, string) {
	t.Helper()
	resp := do(t, req)
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, string(b)
}

func post(t *testing.T, url, body string, header map[string]string) *http.Response {
	t.Helper()
	req := request(t, http.MethodPost, url, body)
	req.Header.Set("Content-Type", "application/json")
	for k, v := range header {
		req.Header.Set(k, v)
	}
	return do(t, req)
}

func get(t *testing.T, url string) (*http.Response, string) {
	t.Helper()
	return fetch(t, request(t, http.MethodGet, url, ""))
}

func TestRootAndRoutes(t *testing.T) {
	s, _ := start(t, fake.Options{})
	for _, tc := range []struct {
		method, path string
		status       int
		body         string
	}{
		{"GET", "/", 200, "Ollama is running"},
		{"HEAD", "/", 200, ""},
		{"GET", "/api/version", 200, `{"version":"` + fake.Version + `"}`},
		{"HEAD", "/api/tags", 200, ""},
		// gin's words, as Ollama sends them (TestRefereeRealOllama).
		{"GET", "/api/nothing", 404, "404 page not found"},
		{"GET", "/api/chat", 405, "405 method not allowed"},
	} {
		resp, b := fetch(t, request(t, tc.method, s.URL()+tc.path, ""))
		if resp.StatusCode != tc.status || (tc.body != "" && b != tc.body) {
			t.Errorf("%s %s = %d %q, want %d %q", tc.method, tc.path, resp.StatusCode, b, tc.status, tc.body)
		}
	}
}

// sseEvents reads "data: …" events until the body ends.
func sseEvents(t *testing.T, r io.Reader) []string {
	t.Helper()
	var events []string
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		line := sc.Text()
		if line == "" {
			continue
		}
		data, ok := strings.CutPrefix(line, "data: ")
		if !ok {
			t.Fatalf("SSE line %q does not start with \"data: \"", line)
		}
		events = append(events, data)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return events
}

type chunk struct {
	ID                string `json:"id"`
	Object            string `json:"object"`
	Created           int64  `json:"created"`
	Model             string `json:"model"`
	SystemFingerprint string `json:"system_fingerprint"`
	Choices           []struct {
		Index        int               `json:"index"`
		Delta        map[string]string `json:"delta"`
		Message      map[string]string `json:"message"`
		FinishReason *string           `json:"finish_reason"`
	} `json:"choices"`
	Usage *struct {
		PromptTokens     int `json:"prompt_tokens"`
		CompletionTokens int `json:"completion_tokens"`
		TotalTokens      int `json:"total_tokens"`
	} `json:"usage"`
}

func TestChatCompletionsSSE(t *testing.T) {
	tokens := []string{"Hi", " there", "!"}
	seen := make(chan int)
	s, _ := start(t, fake.Options{
		Tokens: tokens,
		// Hold each token until the test has read the previous event, so the
		// events can only arrive if each one is flushed alone.
		BeforeToken: func(ctx context.Context, i int) error {
			if i == 0 {
				return nil
			}
			select {
			case got := <-seen:
				if got != i-1 {
					return errors.New("events out of order")
				}
				return nil
			case <-ctx.Done():
				return ctx.Err()
			}
		},
	})
	resp := post(t, s.URL()+"/v1/chat/completions",
		`{"model":"qwen2.5-coder:7b","stream":true,"stream_options":{"include_usage":true},"messages":[{"role":"user","content":"hello"}]}`, nil)
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("status %d, content type %q; want 200 text/event-stream", resp.StatusCode, resp.Header.Get("Content-Type"))
	}

	br := bufio.NewReader(resp.Body)
	var events []string
	for i := range tokens {
		line, err := br.ReadString('\n')
		if err != nil {
			t.Fatalf("reading event %d: %v", i, err)
		}
		if _, err := br.ReadString('\n'); err != nil { // the blank line ending the event
			t.Fatal(err)
		}
		events = append(events, strings.TrimPrefix(strings.TrimSuffix(line, "\n"), "data: "))
		if i < len(tokens)-1 {
			seen <- i
		}
	}
	events = append(events, sseEvents(t, br)...)

	if len(events) != len(tokens)+3 || events[len(events)-1] != "[DONE]" {
		t.Fatalf("events = %q, want %d token chunks, a finish chunk, a usage chunk and [DONE]", events, len(tokens))
	}
	var text strings.Builder
	var ids = map[string]bool{}
	for i, e := range events[:len(events)-1] {
		var c chunk
		if err := json.Unmarshal([]byte(e), &c); err != nil {
			t.Fatalf("event %d %q: %v", i, e, err)
		}
		ids[c.ID] = true
		if c.Object != "chat.completion.chunk" || c.Model != "qwen2.5-coder:7b" || c.SystemFingerprint != "fp_ollama" {
			t.Errorf("event %d = %s, want a chat.completion.chunk of the model from fp_ollama", i, e)
		}
		switch {
		case i < len(tokens):
			if c.Choices[0].FinishReason != nil || c.Choices[0].Delta["role"] != "assistant" {
				t.Errorf("token event %d = %s, want an assistant delta without finish_reason", i, e)
			}
			text.WriteString(c.Choices[0].Delta["content"])
		case i == len(tokens):
			if fr := c.Choices[0].FinishReason; fr == nil || *fr != "stop" {
				t.Errorf("finish event = %s, want finish_reason stop", e)
			}
		default:
			if len(c.Choices) != 0 || c.Usage == nil || c.Usage.CompletionTokens != len(tokens) || c.Usage.TotalTokens != c.Usage.PromptTokens+len(tokens) {
				t.Errorf("usage event = %s, want no choices and usage of %d completion tokens", e, len(tokens))
			}
		}
	}
	if text.String() != "Hi there!" || len(ids) != 1 {
		t.Errorf("text %q over %d ids, want \"Hi there!\" under one chatcmpl id", text.String(), len(ids))
	}
}

func TestChatCompletionsWithoutStreamAndErrors(t *testing.T) {
	s, _ := start(t, fake.Options{Tokens: []string{"ok"}})
	resp := post(t, s.URL()+"/v1/chat/completions", `{"model":"qwen2.5-coder:7b","messages":[{"role":"user","content":"hi"}]}`, nil)
	var c chunk
	if err := json.NewDecoder(resp.Body).Decode(&c); err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 200 || c.Object != "chat.completion" || !strings.HasPrefix(c.ID, "chatcmpl-") || len(c.Choices) != 1 ||
		c.Choices[0].Message["content"] != "ok" || c.Usage == nil || c.Usage.CompletionTokens != 1 {
		t.Errorf("non-streamed completion = %d %+v, want one chat.completion choice \"ok\" with usage", resp.StatusCode, c)
	}

	resp = post(t, s.URL()+"/v1/chat/completions", `{"model":"nope","messages":[{"role":"user","content":"hi"}]}`, nil)
	var e struct {
		Error struct{ Message, Type string } `json:"error"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&e); err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 404 || e.Error.Message != "model 'nope' not found" || e.Error.Type != "api_error" {
		t.Errorf("unknown model = %d %+v, want 404 with an OpenAI-shaped error", resp.StatusCode, e)
	}

	failing, _ := start(t, fake.Options{TokenCount: 5, ErrorAfterTokens: 2, ErrorMessage: "boom"})
	resp = post(t, failing.URL()+"/v1/chat/completions", `{"model":"qwen2.5-coder:7b","stream":true,"messages":[{"role":"user","content":"hi"}]}`, nil)
	events := sseEvents(t, resp.Body)
	if resp.StatusCode != 200 || len(events) != 3 || !strings.Contains(events[2], `"message":"boom"`) {
		t.Errorf("failing stream = %d %q, want 200, two chunks, then an error event \"boom\" and no [DONE]", resp.StatusCode, events)
	}
}

func TestV1Models(t *testing.T) {
	s, _ := start(t, fake.Options{Models: []string{"qwen2.5-coder:7b", "me/custom:1"}})
	resp, body := get(t, s.URL()+"/v1/models")
	var list struct {
		Object string `json:"object"`
		Data   []struct {
			ID, Object, OwnedBy string
			Created             int64
		} `json:"data"`
	}
	if err := json.Unmarshal([]byte(body), &list); err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 200 || list.Object != "list" || len(list.Data) != 2 ||
		list.Data[0].ID != "qwen2.5-coder:7b" || list.Data[0].Object != "model" || list.Data[0].Created == 0 {
		t.Errorf("/v1/models = %s, want a list of both models", body)
	}
	if !strings.Contains(body, `"owned_by":"library"`) || !strings.Contains(body, `"owned_by":"me"`) {
		t.Errorf("/v1/models = %s, want owned_by library and me", body)
	}
}

func TestNDJSONWireFormat(t *testing.T) {
	s, _ := start(t, fake.Options{Tokens: []string{"a", "b"}})
	// No "stream" field: Ollama streams by default.
	resp := post(t, s.URL()+"/api/chat", `{"model":"qwen2.5-coder:7b","messages":[{"role":"user","content":"x"}]}`, nil)
	if ct := resp.Header.Get("Content-Type"); ct != "application/x-ndjson" {
		t.Errorf("Content-Type = %q, want application/x-ndjson", ct)
	}
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")
	if len(lines) != 3 {
		t.Fatalf("body %q, want 3 lines", b)
	}
	var last map[string]any
	if err := json.Unmarshal([]byte(lines[2]), &last); err != nil {
		t.Fatal(err)
	}
	for _, field := range []string{"model", "created_at", "message", "done", "done_reason", "total_duration", "load_duration", "prompt_eval_count", "prompt_eval_duration", "eval_count", "eval_duration"} {
		if _, ok := last[field]; !ok {
			t.Errorf("final line %s lacks %q", lines[2], field)
		}
	}
	if last["done"] != true {
		t.Errorf("final line %s, want done true", lines[2])
	}

	resp = post(t, s.URL()+"/api/chat", `{"model":"qwen2.5-coder:7b","stream":false,"messages":[{"role":"user","content":"x"}]}`, nil)
	if ct := resp.Header.Get("Content-Type"); ct != "application/json; charset=utf-8" {
		t.Errorf("non-streamed Content-Type = %q, want application/json; charset=utf-8", ct)
	}
	// What LiteLLM (so Aider) sends: options, format, tools and keep_alive
	// are accepted, and the answer is the same.
	resp = post(t, s.URL()+"/api/chat", `{"model":"qwen2.5-coder:7b","stream":false,"options":{"num_ctx":16384,"temperature":0},"format":"","tools":[],"keep_alive":"5m","messages":[{"role":"system","content":"be brief"},{"role":"user","content":"x"}]}`, nil)
	var whole struct {
		Message struct{ Content string } `json:"message"`
		Done    bool                     `json:"done"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&whole); err != nil || resp.StatusCode != 200 || whole.Message.Content != "ab" || !whole.Done {
		t.Errorf("Aider-like request: %d %+v %v, want 200 with the whole answer \"ab\"", resp.StatusCode, whole, err)
	}
	resp = post(t, s.URL()+"/api/chat", ``, nil)
	b, _ = io.ReadAll(resp.Body)
	if resp.StatusCode != 400 || string(b) != `{"error":"missing request body"}` {
		t.Errorf("empty body = %d %s, want Ollama's 400 missing request body", resp.StatusCode, b)
	}
}

// TestNoHeadersBeforeFirstToken checks at the socket that nothing, not even
// the status line, leaves the fake while the first token is held back: the
// case that breaks a relay with a short response-header timeout.
func TestNoHeadersBeforeFirstToken(t *testing.T) {
	release := make(chan struct{})
	s, _ := start(t, fake.Options{BeforeToken: func(ctx context.Context, i int) error {
		if i == 0 {
			select {
			case <-release:
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		return nil
	}})
	conn, err := net.Dial("tcp", strings.TrimPrefix(s.URL(), "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	body := `{"model":"qwen2.5-coder:7b","messages":[{"role":"user","content":"x"}]}`
	if _, err := io.WriteString(conn, "POST /api/chat HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: "+
		strconv.Itoa(len(body))+"\r\n\r\n"+body); err != nil {
		t.Fatal(err)
	}
	// Wait until the fake has the request, then see that nothing was sent.
	deadline := testContext(t)
	for len(s.Requests()) == 0 && deadline.Err() == nil {
		time.Sleep(time.Millisecond)
	}
	// Reading nothing for 100 ms is the best a test can see of "nothing was
	// sent"; it cannot fail when the fake is right.
	if err := conn.SetReadDeadline(time.Now().Add(100 * time.Millisecond)); err != nil {
		t.Fatal(err)
	}
	var one [1]byte
	if n, err := conn.Read(one[:]); n > 0 || !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("read %d bytes (%v) while the first token was held back; want nothing", n, err)
	}
	close(release)
	if err := conn.SetReadDeadline(time.Now().Add(testTimeout)); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Errorf("status %d after the first token, want 200", resp.StatusCode)
	}
}

func TestRecordsRequests(t *testing.T) {
	var hooked []fake.Request
	s, _ := start(t, fake.Options{OnRequest: func(r fake.Request) { hooked = append(hooked, r) }})
	post(t, s.URL()+"/api/show", `{"model":"qwen2.5-coder:7b"}`, map[string]string{"X-Test": "1", "Origin": "http://localhost:3000"})
	reqs := s.Requests()
	if len(reqs) != 1 || len(hooked) != 1 {
		t.Fatalf("recorded %d, hooked %d requests; want 1 each", len(reqs), len(hooked))
	}
	r := reqs[0]
	if r.Method != "POST" || r.Path != "/api/show" || r.Host != strings.TrimPrefix(s.URL(), "http://") ||
		r.Origin != "http://localhost:3000" || r.Header.Get("X-Test") != "1" || string(r.Body) != `{"model":"qwen2.5-coder:7b"}` {
		t.Errorf("recorded %+v, want the request as sent", r)
	}
}

func TestHostRule(t *testing.T) {
	hostname, _ := os.Hostname()
	s, _ := start(t, fake.Options{})
	for _, tc := range []struct {
		host string
		ok   bool
	}{
		{"127.0.0.1:11434", true},
		{"localhost", true},
		{"LOCALHOST:11434", true},
		{"[::1]:11434", true},
		{"0.0.0.0:11434", true},
		{"10.1.2.3:11434", true},
		{"192.168.65.254", true},
		{"172.17.0.1:11434", true},
		{"host.docker.internal:11434", true},
		{"ollama.local", true},
		{"app.localhost:8080", true},
		{hostname, true},
		{"example.com", false},
		{"example.com:11434", false},
		{"8.8.8.8:11434", false},
		{"host.docker.internal.example.com", false},
		{"localhost.example.com", false},
	} {
		req := request(t, http.MethodGet, s.URL()+"/api/tags", "")
		req.Host = tc.host
		resp, b := fetch(t, req)
		want := 200
		if !tc.ok {
			want = 403
		}
		if resp.StatusCode != want || (!tc.ok && len(b) != 0) {
			t.Errorf("Host %q: %d %q, want %d (bare when 403)", tc.host, resp.StatusCode, b, want)
		}
	}

	// Listening elsewhere than loopback, Ollama serves any Host.
	wide := fake.New(fake.Options{ListenAddr: &net.TCPAddr{IP: net.IPv4(192, 168, 1, 10), Port: 11434}})
	rec := httptest.NewRecorder()
	req := httptest.NewRequest(http.MethodGet, "http://example.com/api/tags", nil)
	wide.ServeHTTP(rec, req)
	if rec.Code != 200 {
		t.Errorf("Host example.com on a non-loopback listener: %d, want 200", rec.Code)
	}
}

func TestOriginRule(t *testing.T) {
	s, _ := start(t, fake.Options{AllowedOrigins: []string{"https://app.example.com", "https://*.trusted.dev"}})
	self := s.URL()
	for _, tc := range []struct {
		method, origin string
		status         int
	}{
		{"GET", "", 200},
		{"GET", self, 200}, // same origin is not a CORS request
		{"GET", "http://localhost", 200},
		{"GET", "http://localhost:3000", 200},
		{"GET", "https://127.0.0.1:8443", 200},
		{"GET", "vscode-webview://abc", 200},
		{"GET", "https://app.example.com", 200},
		{"GET", "https://x.trusted.dev", 200},
		{"GET", "https://evil.example.com", 403},
		{"GET", "http://localhost.evil.com", 403},
		{"GET", "null", 403},
		{"OPTIONS", "http://localhost:3000", 204},
		{"OPTIONS", "https://evil.example.com", 403},
	} {
		req := request(t, tc.method, s.URL()+"/api/tags", "")
		if tc.origin != "" {
			req.Header.Set("Origin", tc.origin)
		}
		resp, _ := fetch(t, req)
		if resp.StatusCode != tc.status {
			t.Errorf("%s with Origin %q: %d, want %d", tc.method, tc.origin, resp.StatusCode, tc.status)
		}
		if tc.status == 200 && tc.origin != "" && tc.origin != self && resp.Header.Get("Access-Control-Allow-Origin") != tc.origin {
			t.Errorf("Origin %q allowed without Access-Control-Allow-Origin", tc.origin)
		}
	}
}
