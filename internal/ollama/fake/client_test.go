package fake_test

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ollama/ollama/api"

	"github.com/slapenir/slapenir/internal/ollama/fake"
)

// These tests drive the fake with Ollama's own Go client, so a field the fake
// names or types wrongly shows up as a decoding error or an empty value.

// testTimeout bounds every test: a fake that buffered a stream instead of
// flushing each token would otherwise hang the gated tests forever.
const testTimeout = 20 * time.Second

func start(t *testing.T, opts fake.Options) (*fake.Server, *api.Client) {
	t.Helper()
	s, err := fake.Listen("127.0.0.1:0", opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	u, err := url.Parse(s.URL())
	if err != nil {
		t.Fatal(err)
	}
	return s, api.NewClient(u, &http.Client{})
}

func testContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	t.Cleanup(cancel)
	return ctx
}

func ptr[T any](v T) *T { return &v }

func TestVersionAndListAndShow(t *testing.T) {
	ctx := testContext(t)
	_, c := start(t, fake.Options{Models: []string{"qwen2.5-coder:7b", "llama3"}})

	v, err := c.Version(ctx)
	if err != nil || v != fake.Version {
		t.Fatalf("Version = %q, %v; want %q", v, err, fake.Version)
	}

	list, err := c.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, m := range list.Models {
		names = append(names, m.Name)
		if m.Model != m.Name || m.Size == 0 || len(m.Digest) != 64 || m.ModifiedAt.IsZero() {
			t.Errorf("model %+v: want model=name, a size, a sha256 digest and a modified_at", m)
		}
		if m.Details.Format != "gguf" || m.Details.QuantizationLevel == "" {
			t.Errorf("model %q details = %+v, want gguf with a quantization level", m.Name, m.Details)
		}
	}
	if strings.Join(names, ",") != "qwen2.5-coder:7b,llama3:latest" {
		t.Errorf("List names = %v, want [qwen2.5-coder:7b llama3:latest]", names)
	}

	show, err := c.Show(ctx, &api.ShowRequest{Model: "qwen2.5-coder:7b"})
	if err != nil {
		t.Fatal(err)
	}
	if show.ModelInfo["qwen2.context_length"] == nil || show.Details.Family != "qwen2" || show.Template == "" {
		t.Errorf("Show = %+v, want a context length in model_info, family qwen2 and a template", show)
	}
	if len(show.Capabilities) == 0 || show.Capabilities[0] != "completion" {
		t.Errorf("Show capabilities = %v, want completion first", show.Capabilities)
	}
	// Ollama accepts the other spellings of a name it has, and the
	// deprecated "name" field, which LiteLLM (so Aider) still sends.
	//lint:ignore SA1019 the deprecated field is what is under test
	if _, err := c.Show(ctx, &api.ShowRequest{Name: "registry.ollama.ai/library/llama3:latest"}); err != nil {
		t.Errorf("Show by full name: %v", err)
	}
}

// TestChatStreamsEachTokenSeparately holds every token back until the client
// has received the one before: the stream only completes if each token is
// flushed on its own, and the first reaches the client before the last is
// even written.
func TestChatStreamsEachTokenSeparately(t *testing.T) {
	ctx := testContext(t)
	tokens := []string{"Go", " is", " fun", "."}
	step := fake.NewLockstep(len(tokens))
	_, c := start(t, fake.Options{
		Tokens:      tokens,
		BeforeToken: step.BeforeToken,
	})

	var got []api.ChatResponse
	err := c.Chat(ctx, &api.ChatRequest{
		Model:    "qwen2.5-coder:7b",
		Messages: []api.Message{{Role: "user", Content: "say something"}},
	}, func(r api.ChatResponse) error {
		got = append(got, r)
		if !r.Done {
			step.Got(len(got) - 1)
		}
		return nil
	})
	if err != nil {
		t.Fatalf("Chat: %v (a fake that buffers the stream never gets past the first token)", err)
	}
	if len(got) != len(tokens)+1 {
		t.Fatalf("got %d callbacks, want %d tokens and a final one", len(got), len(tokens))
	}
	for i, tok := range tokens {
		r := got[i]
		if r.Done || r.Message.Content != tok || r.Message.Role != "assistant" || r.Model != "qwen2.5-coder:7b" || r.CreatedAt.IsZero() {
			t.Errorf("callback %d = %+v, want token %q from the assistant, not done", i, r, tok)
		}
	}
	last := got[len(got)-1]
	if !last.Done || last.DoneReason != "stop" || last.Message.Content != "" {
		t.Errorf("final callback = %+v, want done with reason stop and no content", last)
	}
	if last.EvalCount != len(tokens) || last.PromptEvalCount != 2 || last.TotalDuration <= 0 || last.EvalDuration <= 0 {
		t.Errorf("final metrics = %+v, want eval_count %d, prompt_eval_count 2 and durations", last.Metrics, len(tokens))
	}
}

func TestGenerateWithoutStreaming(t *testing.T) {
	ctx := testContext(t)
	_, c := start(t, fake.Options{Tokens: []string{"func", " main", "()"}, FirstByteDelay: 20 * time.Millisecond})

	var got []api.GenerateResponse
	err := c.Generate(ctx, &api.GenerateRequest{Model: "qwen2.5-coder:7b", Prompt: "write main", Stream: ptr(false)},
		func(r api.GenerateResponse) error { got = append(got, r); return nil })
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 {
		t.Fatalf("got %d responses, want exactly one without streaming", len(got))
	}
	r := got[0]
	if !r.Done || r.Response != "func main()" || r.DoneReason != "stop" || len(r.Context) == 0 {
		t.Errorf("response = %+v, want the whole answer, done, with a context", r)
	}
	// The fake reports the first-byte delay as the model's load time.
	if r.EvalCount != 3 || r.LoadDuration < 20*time.Millisecond {
		t.Errorf("metrics = %+v, want eval_count 3 and load_duration >= the first-byte delay", r.Metrics)
	}
}

func TestGenerateStreamsAndEmptyPromptLoads(t *testing.T) {
	ctx := testContext(t)
	_, c := start(t, fake.Options{TokenCount: 25})

	var text strings.Builder
	var n int
	var final api.GenerateResponse
	err := c.Generate(ctx, &api.GenerateRequest{Model: "qwen2.5-coder:7b", Prompt: "hi"}, func(r api.GenerateResponse) error {
		n++
		text.WriteString(r.Response)
		final = r
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if n != 26 || !final.Done || final.EvalCount != 25 || text.Len() == 0 {
		t.Errorf("got %d responses ending %+v, want 25 tokens and a final done with eval_count 25", n, final)
	}

	var load []api.GenerateResponse
	err = c.Generate(ctx, &api.GenerateRequest{Model: "qwen2.5-coder:7b"}, func(r api.GenerateResponse) error {
		load = append(load, r)
		return nil
	})
	if err != nil || len(load) != 1 || load[0].DoneReason != "load" || !load[0].Done {
		t.Errorf("empty prompt: %v, %+v; want one done response with reason load", err, load)
	}
}

func TestPullProgressThenListed(t *testing.T) {
	ctx := testContext(t)
	_, c := start(t, fake.Options{})

	var got []api.ProgressResponse
	err := c.Pull(ctx, &api.PullRequest{Model: "llama3.2:1b"}, func(p api.ProgressResponse) error {
		got = append(got, p)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) < 4 || got[0].Status != "pulling manifest" || got[len(got)-1].Status != "success" {
		t.Fatalf("progress = %+v, want pulling manifest … success", got)
	}
	var downloads []api.ProgressResponse
	for _, p := range got {
		if p.Total > 0 {
			downloads = append(downloads, p)
		}
	}
	if len(downloads) < 2 {
		t.Fatalf("progress = %+v, want several download lines with total/completed", got)
	}
	for i, p := range downloads {
		if !strings.HasPrefix(p.Status, "pulling ") || !strings.HasPrefix(p.Digest, "sha256:") {
			t.Errorf("download line %+v, want status \"pulling <digest>\" and a sha256 digest", p)
		}
		if i > 0 && p.Completed < downloads[i-1].Completed {
			t.Errorf("completed went backwards: %d after %d", p.Completed, downloads[i-1].Completed)
		}
	}
	if last := downloads[len(downloads)-1]; last.Completed != last.Total {
		t.Errorf("last download line %+v, want completed == total", last)
	}

	if _, err := c.Show(ctx, &api.ShowRequest{Model: "llama3.2:1b"}); err != nil {
		t.Errorf("Show after pull: %v, want the pulled model to exist", err)
	}
}

func TestErrorLineAfter200(t *testing.T) {
	ctx := testContext(t)
	_, c := start(t, fake.Options{TokenCount: 10, ErrorAfterTokens: 3, ErrorMessage: "runner crashed"})

	var tokens int
	err := c.Chat(ctx, &api.ChatRequest{Model: "qwen2.5-coder:7b", Messages: []api.Message{{Role: "user", Content: "hi"}}},
		func(r api.ChatResponse) error {
			if r.Done {
				t.Errorf("got a done line in a stream that fails: %+v", r)
			}
			tokens++
			return nil
		})
	if err == nil || err.Error() != "runner crashed" {
		t.Fatalf("Chat error = %v, want the error line's message \"runner crashed\"", err)
	}
	var se api.StatusError
	if errors.As(err, &se) {
		t.Errorf("error is a StatusError %+v; want a plain error, as after a 200", se)
	}
	if tokens != 3 {
		t.Errorf("got %d tokens before the error, want 3", tokens)
	}

	// Without streaming, the same failure is Ollama's 500.
	err = c.Chat(ctx, &api.ChatRequest{Model: "qwen2.5-coder:7b", Stream: ptr(false), Messages: []api.Message{{Role: "user", Content: "hi"}}},
		func(api.ChatResponse) error { return nil })
	if !errors.As(err, &se) || se.StatusCode != http.StatusInternalServerError || se.ErrorMessage != "runner crashed" {
		t.Errorf("non-streamed Chat error = %v, want a 500 StatusError \"runner crashed\"", err)
	}
}

func TestUnknownModelIs404(t *testing.T) {
	ctx := testContext(t)
	_, c := start(t, fake.Options{})
	want := "model 'nope:1b' not found"

	err := c.Chat(ctx, &api.ChatRequest{Model: "nope:1b", Messages: []api.Message{{Role: "user", Content: "hi"}}},
		func(api.ChatResponse) error { return nil })
	var se api.StatusError
	if !errors.As(err, &se) || se.StatusCode != http.StatusNotFound || se.ErrorMessage != want {
		t.Errorf("Chat error = %#v, want 404 %q", err, want)
	}
	_, err = c.Show(ctx, &api.ShowRequest{Model: "nope:1b"})
	if !errors.As(err, &se) || se.StatusCode != http.StatusNotFound || se.ErrorMessage != want {
		t.Errorf("Show error = %#v, want 404 %q", err, want)
	}
	err = c.Generate(ctx, &api.GenerateRequest{Model: "nope:1b", Prompt: "x"}, func(api.GenerateResponse) error { return nil })
	if !errors.As(err, &se) || se.StatusCode != http.StatusNotFound {
		t.Errorf("Generate error = %#v, want 404", err)
	}
}

// TestCutStreams covers the two ways a stream breaks without an error line:
// BeforeToken failing and the fake being closed mid-answer. Ollama's client
// returns no error when the body just ends, so the missing done line is the
// only sign — which is what a relay test must check too.
func TestCutStreams(t *testing.T) {
	for _, tc := range []struct {
		name string
		cut  func(s *atomic.Pointer[fake.Server]) func(ctx context.Context, i int) error
	}{
		{"BeforeToken error", func(*atomic.Pointer[fake.Server]) func(context.Context, int) error {
			return func(_ context.Context, i int) error {
				if i == 2 {
					return errors.New("cut")
				}
				return nil
			}
		}},
		{"server closed", func(s *atomic.Pointer[fake.Server]) func(context.Context, int) error {
			return func(ctx context.Context, i int) error {
				if i == 2 {
					_ = s.Load().Close()
					<-ctx.Done()
					return ctx.Err()
				}
				return nil
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := testContext(t)
			var srv atomic.Pointer[fake.Server]
			s, c := start(t, fake.Options{TokenCount: 5, BeforeToken: tc.cut(&srv)})
			srv.Store(s)
			var got []api.ChatResponse
			err := c.Chat(ctx, &api.ChatRequest{Model: "qwen2.5-coder:7b", Messages: []api.Message{{Role: "user", Content: "hi"}}},
				func(r api.ChatResponse) error { got = append(got, r); return nil })
			if ctx.Err() != nil {
				t.Fatalf("Chat did not end when the stream was cut: %v", err)
			}
			if len(got) != 2 {
				t.Errorf("got %d lines (%v), want the 2 tokens before the cut", len(got), err)
			}
			for _, r := range got {
				if r.Done {
					t.Errorf("got a done line from a cut stream: %+v", r)
				}
			}
		})
	}
}
