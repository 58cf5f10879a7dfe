package realollama

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/ollama/ollama/api"
)

// The generator writes the same bytes every time: the cache key of the
// created model, and the answers tests see, depend on it.
func TestModelIsRepeatable(t *testing.T) {
	a, err := modelFiles()
	if err != nil {
		t.Fatal(err)
	}
	b, err := modelFiles()
	if err != nil {
		t.Fatal(err)
	}
	total := 0
	for name, data := range a {
		if !bytes.Equal(data, b[name]) {
			t.Errorf("%s differs between two calls", name)
		}
		total += len(data)
	}
	vocab, _ := vocabulary()
	if n := len(vocab) + 2; n < 280 || n > 320 {
		t.Errorf("vocabulary of %d tokens, want about 300", n)
	}
	if total > 600<<10 {
		t.Errorf("the model's files are %d bytes, want a tiny model", total)
	}
}

// TestStreamsTokens: the real server, with the tiny model created from
// nothing downloaded, streams a chat one token a chunk, and says it stopped
// for length (the model never emits its end token).
func TestStreamsTokens(t *testing.T) {
	s := Start(t, Options{})
	u, _ := url.Parse(s.URL)
	client := api.NewClient(u, &http.Client{Transport: &http.Transport{Proxy: nil}})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	list, err := client.List(ctx)
	if err != nil || len(list.Models) != 1 || list.Models[0].Name != Model {
		t.Fatalf("/api/tags = %+v, %v; want only %s", list, err, Model)
	}
	var chunks []string
	var times []time.Time
	var last api.ChatResponse
	err = client.Chat(ctx, &api.ChatRequest{Model: Model, Messages: []api.Message{{Role: "user", Content: "say hello"}}},
		func(r api.ChatResponse) error {
			if r.Message.Content != "" {
				chunks = append(chunks, r.Message.Content)
				times = append(times, time.Now())
			}
			last = r
			return nil
		})
	if err != nil {
		t.Fatalf("chat: %v", err)
	}
	if len(chunks) < 2 || len(chunks) > DefaultTokens {
		t.Errorf("%d chunks %q, want between 2 and %d (num_predict)", len(chunks), chunks, DefaultTokens)
	}
	if !last.Done || last.EvalCount != len(chunks) {
		t.Errorf("last line %+v: want done, with eval_count = %d chunks", last, len(chunks))
	}
	t.Logf("answer %q (%s), first chunk to last %s", chunks, last.DoneReason, times[len(times)-1].Sub(times[0]))

	// The same request again: the same answer (the Modelfile's seed).
	var again []string
	err = client.Chat(ctx, &api.ChatRequest{Model: Model, Messages: []api.Message{{Role: "user", Content: "say hello"}}},
		func(r api.ChatResponse) error {
			if r.Message.Content != "" {
				again = append(again, r.Message.Content)
			}
			return nil
		})
	if err != nil || strings.Join(again, "") != strings.Join(chunks, "") {
		t.Errorf("second chat: %q, %v; want the first answer %q again", again, err, chunks)
	}
}

// Without a built binary and without the headers the build needs, Binary
// skips the test (naming the packages) instead of failing after minutes of
// compiling.
func TestBinarySkipsWithoutHeaders(t *testing.T) {
	t.Setenv("XDG_CACHE_HOME", t.TempDir()) // no cached binary
	t.Setenv("SLAPENIR_OLLAMA_BIN", "")
	saved := headers
	headers = []struct{ file, pkg string }{{"/nonexistent/nlohmann/json.hpp", "nlohmann-json3-dev"}}
	defer func() { headers = saved }()
	built := false
	t.Run("needs the headers", func(t *testing.T) {
		Binary(t)
		built = true
	})
	if built {
		t.Fatal("Binary went on to build without the headers")
	}
}

// Listening on every address (as for containers), the server answers on
// this machine's loopback at URL.
func TestStartOnEveryAddress(t *testing.T) {
	s := Start(t, Options{Addr: "0.0.0.0:0"})
	if !strings.HasPrefix(s.Addr, "0.0.0.0:") || !strings.HasPrefix(s.URL, "http://127.0.0.1:") {
		t.Errorf("Addr %s, URL %s: want 0.0.0.0:PORT and http://127.0.0.1:PORT", s.Addr, s.URL)
	}
	resp, err := http.Get(s.URL + "/api/version")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(b), `"version":"`+Version+`"`) {
		t.Errorf("/api/version = %d %s, want %s", resp.StatusCode, b, Version)
	}
}
