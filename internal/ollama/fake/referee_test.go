package fake_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/slapenir/slapenir/internal/ollama/fake"
	"github.com/slapenir/slapenir/internal/testutil/realollama"
)

// TestRefereeRealOllama sends the same requests to the fake and to the real
// Ollama (the version the fake copies, serving a tiny model), and compares
// what a client reads: the status, the headers clients look at, the framing
// of streams (NDJSON lines; SSE data events and data: [DONE]), the JSON
// field names of every body, line and event, and error messages. The fake's
// answers are canned, so token text and numbers are not compared; anything
// else that differs is drift, and fails here.
func TestRefereeRealOllama(t *testing.T) {
	if testing.Short() {
		t.Skip("starts the real Ollama (-short)")
	}
	real := realollama.Start(t, realollama.Options{})
	f, err := fake.Listen("127.0.0.1:0", fake.Options{Models: []string{realollama.Model}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = f.Close() })

	m := realollama.Model
	chat := `{"model":"` + m + `","messages":[{"role":"user","content":"say hello"}]`
	gen := `{"model":"` + m + `","prompt":"say hello"`
	for _, c := range []refereeCase{
		{name: "root", method: "GET", path: "/"},
		{name: "version", method: "GET", path: "/api/version"},
		{name: "tags", method: "GET", path: "/api/tags"},
		{name: "show", method: "POST", path: "/api/show", body: `{"model":"` + m + `"}`},
		{name: "show by the deprecated name field", method: "POST", path: "/api/show", body: `{"name":"` + m + `"}`},
		{name: "chat streamed", method: "POST", path: "/api/chat", body: chat + `}`},
		{name: "chat not streamed", method: "POST", path: "/api/chat", body: chat + `,"stream":false}`},
		{name: "generate streamed", method: "POST", path: "/api/generate", body: gen + `}`},
		{name: "generate not streamed", method: "POST", path: "/api/generate", body: gen + `,"stream":false}`},
		{name: "v1 models", method: "GET", path: "/v1/models"},
		{name: "v1 chat", method: "POST", path: "/v1/chat/completions", body: `{"model":"` + m + `","messages":[{"role":"user","content":"say hello"}]}`},
		{name: "v1 chat streamed", method: "POST", path: "/v1/chat/completions", body: `{"model":"` + m + `","stream":true,"messages":[{"role":"user","content":"say hello"}]}`},
		{name: "v1 chat streamed with usage", method: "POST", path: "/v1/chat/completions", body: `{"model":"` + m + `","stream":true,"stream_options":{"include_usage":true},"messages":[{"role":"user","content":"say hello"}]}`},
		{name: "chat of an unknown model", method: "POST", path: "/api/chat", body: `{"model":"nosuch:1b","messages":[{"role":"user","content":"hi"}]}`},
		{name: "generate of an unknown model", method: "POST", path: "/api/generate", body: `{"model":"nosuch:1b","prompt":"hi"}`},
		{name: "show of an unknown model", method: "POST", path: "/api/show", body: `{"model":"nosuch:1b"}`},
		{name: "v1 chat of an unknown model", method: "POST", path: "/v1/chat/completions", body: `{"model":"nosuch:1b","messages":[{"role":"user","content":"hi"}]}`},
		{name: "chat without a model", method: "POST", path: "/api/chat", body: `{"messages":[{"role":"user","content":"hi"}]}`},
		{name: "chat with a bad JSON body", method: "POST", path: "/api/chat", body: `{"model":`},
		{name: "generate with a bad JSON body", method: "POST", path: "/api/generate", body: `{"model": 12}`},
		{name: "chat with no body", method: "POST", path: "/api/chat"},
		{name: "v1 chat with a bad JSON body", method: "POST", path: "/v1/chat/completions", body: `{"model":`},
		{name: "v1 chat with a number for the model", method: "POST", path: "/v1/chat/completions", body: `{"model":12,"messages":[{"role":"user","content":"hi"}]}`},
		{name: "v1 chat without messages", method: "POST", path: "/v1/chat/completions", body: `{"model":"` + m + `","messages":[]}`},
		{name: "v1 chat without a model", method: "POST", path: "/v1/chat/completions", body: `{"messages":[{"role":"user","content":"hi"}]}`},
		{name: "show with a number for the model", method: "POST", path: "/api/show", body: `{"model":12}`},
		{name: "chat without messages", method: "POST", path: "/api/chat", body: `{"model":"` + m + `","messages":[]}`},
		{name: "an unknown path", method: "GET", path: "/api/nosuch"},
		{name: "a known path with the wrong method", method: "GET", path: "/api/chat"},
		{name: "a cross-origin request from an unknown origin", method: "GET", path: "/api/tags", header: http.Header{"Origin": {"https://evil.example"}}},
		{name: "a cross-origin request from localhost", method: "GET", path: "/api/tags", header: http.Header{"Origin": {"http://localhost:3000"}}},
		{name: "a CORS preflight", method: "OPTIONS", path: "/api/chat", header: http.Header{"Origin": {"http://localhost:3000"}, "Access-Control-Request-Method": {"POST"}}},
		{name: "a Host that is not this machine", method: "GET", path: "/api/tags", host: "example.com"},
		{name: "a Host that is a private name", method: "GET", path: "/api/tags", host: "host.docker.internal:11434"},
	} {
		t.Run(c.name, func(t *testing.T) {
			want := observe(t, real.URL, c)
			got := observe(t, f.URL(), c)
			for _, d := range want.diff(got) {
				t.Errorf("%s %s: the fake %s", c.method, c.path, d)
			}
		})
	}
}

type refereeCase struct {
	name, method, path, body string
	header                   http.Header
	host                     string
}

// observation is what a client reads of one answer.
type observation struct {
	status  int
	headers map[string]string // the headers clients read, "" when absent
	framing string            // "json", "ndjson", "sse", "text", "empty"
	// fields are the JSON field paths of the body, or of the first and
	// last line or event of a stream, and of every line or event between.
	first, middle, last []string
	errors              []string // error messages (and /v1 error types), wherever they are
	newline             bool     // a JSON body ends with a newline (json.Encoder) or not (gin)
	done                bool     // an SSE stream's data: [DONE]
	lines               int      // stream lines or events
}

// readHeaders are the response headers a client acts on.
var readHeaders = []string{"Content-Type", "Access-Control-Allow-Origin", "Access-Control-Allow-Methods", "Content-Encoding", "Transfer-Encoding"}

func observe(t *testing.T, base string, c refereeCase) observation {
	t.Helper()
	var body io.Reader
	if c.body != "" {
		body = strings.NewReader(c.body)
	}
	req, err := http.NewRequest(c.method, base+c.path, body)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range c.header {
		req.Header[k] = v
	}
	if c.host != "" {
		req.Host = c.host
	}
	if c.body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	client := &http.Client{Timeout: 2 * time.Minute, Transport: &http.Transport{Proxy: nil, DisableCompression: true}}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("%s %s%s: %v", c.method, base, c.path, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s%s: reading the body: %v", c.method, base, c.path, err)
	}
	o := observation{status: resp.StatusCode, headers: map[string]string{}}
	for _, h := range readHeaders {
		o.headers[h] = resp.Header.Get(h)
	}
	// Whether a body comes in chunks or with a length is what tells a
	// client it is a stream.
	o.headers["Transfer-Encoding"] = strings.Join(resp.TransferEncoding, ",")
	ct := resp.Header.Get("Content-Type")
	switch {
	case len(raw) == 0:
		o.framing = "empty"
	case strings.HasPrefix(ct, "application/x-ndjson"):
		o.framing = "ndjson"
		sc := bufio.NewScanner(bytes.NewReader(raw))
		sc.Buffer(nil, 1<<20)
		var docs []any
		for sc.Scan() {
			var v any
			if err := json.Unmarshal(sc.Bytes(), &v); err != nil {
				t.Errorf("%s: NDJSON line %q: %v", base, sc.Text(), err)
			}
			docs = append(docs, v)
		}
		if !bytes.HasSuffix(raw, []byte("\n")) {
			t.Errorf("%s: NDJSON stream does not end with a newline", base)
		}
		o.stream(docs)
	case strings.HasPrefix(ct, "text/event-stream"):
		o.framing = "sse"
		events := strings.Split(string(raw), "\n\n")
		if events[len(events)-1] != "" {
			t.Errorf("%s: SSE stream does not end with a blank line: %q", base, events[len(events)-1])
		}
		var docs []any
		for _, ev := range events[:len(events)-1] {
			data, ok := strings.CutPrefix(ev, "data: ")
			if !ok || strings.Contains(data, "\n") {
				t.Errorf("%s: SSE event %q is not one data: line", base, ev)
				continue
			}
			if data == "[DONE]" {
				o.done = true
				continue
			}
			if o.done {
				t.Errorf("%s: SSE event after data: [DONE]: %q", base, ev)
			}
			var v any
			if err := json.Unmarshal([]byte(data), &v); err != nil {
				t.Errorf("%s: SSE data %q: %v", base, data, err)
			}
			docs = append(docs, v)
		}
		o.stream(docs)
	default:
		var v any
		if json.Unmarshal(raw, &v) == nil {
			o.framing = "json"
			o.newline = bytes.HasSuffix(raw, []byte("\n"))
			o.first = fieldPaths(v)
			o.errors = errorsIn(v)
		} else {
			o.framing = "text"
			o.first = []string{strings.TrimSpace(string(raw))}
		}
	}
	return o
}

func (o *observation) stream(docs []any) {
	o.lines = len(docs)
	if len(docs) == 0 {
		return
	}
	o.first = fieldPaths(docs[0])
	o.last = fieldPaths(docs[len(docs)-1])
	seen := map[string]bool{}
	for _, d := range docs[min(1, len(docs)-1):max(1, len(docs)-1)] {
		for _, p := range fieldPaths(d) {
			seen[p] = true
		}
	}
	for p := range seen {
		o.middle = append(o.middle, p)
	}
	sort.Strings(o.middle)
	for _, d := range docs {
		o.errors = append(o.errors, errorsIn(d)...)
	}
}

// diff lists how got (the fake) differs from o (the real server).
func (o observation) diff(got observation) []string {
	var d []string
	if got.status != o.status {
		d = append(d, fmt.Sprintf("answers %d, the real Ollama %d", got.status, o.status))
	}
	for _, h := range readHeaders {
		// A JSON document goes out with a length or in chunks by its
		// size alone (net/http buffers 2 KB); only a stream must be chunked.
		if h == "Transfer-Encoding" && o.framing != "ndjson" && o.framing != "sse" {
			continue
		}
		if got.headers[h] != o.headers[h] {
			d = append(d, fmt.Sprintf("sends %s %q, the real Ollama %q", h, got.headers[h], o.headers[h]))
		}
	}
	if got.framing != o.framing {
		d = append(d, fmt.Sprintf("frames its body as %s, the real Ollama as %s", got.framing, o.framing))
	}
	if got.newline != o.newline {
		d = append(d, fmt.Sprintf("ends its JSON body with a newline: %v, the real Ollama: %v", got.newline, o.newline))
	}
	if got.done != o.done {
		d = append(d, fmt.Sprintf("ends its SSE stream with data: [DONE]: %v, the real Ollama: %v", got.done, o.done))
	}
	if (got.lines > 2) != (o.lines > 2) {
		d = append(d, fmt.Sprintf("streams %d lines or events, the real Ollama %d", got.lines, o.lines))
	}
	for _, part := range []struct {
		name      string
		want, got []string
	}{{"body (or first line or event)", o.first, got.first}, {"lines or events between", o.middle, got.middle}, {"last line or event", o.last, got.last}} {
		if missing, extra := setDiff(part.want, part.got); len(missing)+len(extra) > 0 {
			d = append(d, fmt.Sprintf("%s: lacks %q, adds %q", part.name, missing, extra))
		}
	}
	if !slices.Equal(got.errors, o.errors) {
		d = append(d, fmt.Sprintf("says %q, the real Ollama %q", got.errors, o.errors))
	}
	return d
}

// fieldPaths lists the JSON paths of v's fields ("models[].details.family"),
// not descending into maps keyed by the model's own names (model_info,
// tensors, projector_info), whose keys differ from model to model.
func fieldPaths(v any) []string {
	seen := map[string]bool{}
	var walk func(prefix string, v any)
	walk = func(prefix string, v any) {
		switch x := v.(type) {
		case map[string]any:
			for k, e := range x {
				p := k
				if prefix != "" {
					p = prefix + "." + k
				}
				if modelSpecific[p] {
					continue
				}
				seen[p] = true
				if k == "model_info" || k == "projector_info" || k == "tensors" {
					continue
				}
				walk(p, e)
			}
		case []any:
			for _, e := range x {
				walk(prefix+"[]", e)
			}
		}
	}
	walk("", v)
	var paths []string
	for p := range seen {
		paths = append(paths, p)
	}
	sort.Strings(paths)
	return paths
}

// modelSpecific are fields present or not by the model, not by the server:
// the tiny model has no license, qwen2.5-coder (the fake's) has one.
var modelSpecific = map[string]bool{"license": true}

// errorsIn returns v's error message: {"error":"…"} on /api,
// {"error":{"message":"…"}} on /v1.
func errorsIn(v any) []string {
	m, ok := v.(map[string]any)
	if !ok {
		return nil
	}
	switch e := m["error"].(type) {
	case string:
		return []string{e}
	case map[string]any:
		msg, _ := e["message"].(string)
		typ, _ := e["type"].(string)
		return []string{msg + " (" + typ + ")"}
	}
	return nil
}

func setDiff(want, got []string) (missing, extra []string) {
	for _, w := range want {
		if !slices.Contains(got, w) {
			missing = append(missing, w)
		}
	}
	for _, g := range got {
		if !slices.Contains(want, g) {
			extra = append(extra, g)
		}
	}
	return missing, extra
}
