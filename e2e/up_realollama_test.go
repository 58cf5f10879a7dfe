package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/ollama/ollama/api"

	"github.com/slapenir/slapenir/internal/testutil/realollama"
)

// realTokens is how long the answers streamed through the path are: long
// enough (a few hundred milliseconds of the tiny model on one thread) that
// a hop holding the stream back shows as tokens arriving all at once.
const realTokens = 400

// TestUpWithRealOllama is the seed's "Local LLM Support" path with a real
// Ollama at its end: `slapenir up` with OLLAMA_HOST at a real `ollama
// serve` (built from the module proxy, serving a tiny model made here) and
// OLLAMA_MODEL its model. ollama-verify's two lines are the real server's;
// from the agent's side, /api/chat with Ollama's Go client and
// /v1/chat/completions stream token by token through the helper → relay →
// proxy → Ollama, with Go and with curl; and Ollama's own Origin rule still
// refuses what it would refuse, while the Host the proxy forwards passes
// its Host rule.
func TestUpWithRealOllama(t *testing.T) {
	needRootUp(t)
	testUpRealOllama(t, true)
}

// TestUpWithRealOllamaUnconfined is the same with `up --unconfined`, as any
// user runs it: the agent's clients on this machine's network.
func TestUpWithRealOllamaUnconfined(t *testing.T) {
	testUpRealOllama(t, false)
}

func testUpRealOllama(t *testing.T, confined bool) {
	if _, err := exec.LookPath("curl"); err != nil {
		t.Skipf("needs curl: %v", err)
	}
	srv := realollama.Start(t, realollama.Options{})
	model := realollama.Model

	dir := agentTempDir(t)
	state := filepath.Join(dir, "state")
	env := append(upEnv(t, dir), "OLLAMA_HOST="+srv.Addr, "OLLAMA_MODEL="+model)
	args := []string{"--no-fake-ollama", "--heartbeat", "1s"}
	if !confined {
		// Unconfined, the services run as this user with HOME as given
		// (the last HOME in the environment wins).
		env = append(env, "HOME="+state)
		args = append(args, "--unconfined")
	}
	u := startUp(t, state, env, args...)
	e := u.endpoints(confined)
	if e.Ollama != srv.Addr {
		t.Fatalf("up chose Ollama at %s, want the real one at %s", e.Ollama, srv.Addr)
	}
	u.waitFor(t, `^\[up\]   Ollama:  http://\S+ \(real\), model `+regexp.QuoteMeta(model)+`$`, time.Second)
	u.waitFor(t, `^\[ollama-verify\] Ollama is reachable through proxy!$`, 2*time.Minute)
	u.waitFor(t, `^\[ollama-verify\] Model `+regexp.QuoteMeta(model)+` is available$`, 10*time.Second)
	if strings.Contains(u.output(), "fake Ollama") {
		t.Errorf("up or ollama-verify speak of a fake Ollama with a real one at %s", srv.Addr)
	}

	// Clients on the agent's side: in its namespace when confined.
	var dial func(ctx context.Context, network, addr string) (net.Conn, error)
	curl := []string{"curl"}
	if confined {
		dial = netnsDialer("/run/netns/" + e.Netns)
		curl = []string{"ip", "netns", "exec", e.Netns, "curl"}
	}
	helper := "http://" + e.Helper
	plain := &http.Client{Transport: &http.Transport{Proxy: nil, DialContext: dial, DisableCompression: true}}

	t.Run("Ollama's Go client streams /api/chat token by token", func(t *testing.T) {
		client := api.NewClient(mustURL(t, helper), plain)
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		var arrivals []time.Time
		var last api.ChatResponse
		err := client.Chat(ctx, &api.ChatRequest{Model: model, Options: map[string]any{"num_predict": realTokens},
			Messages: []api.Message{{Role: "user", Content: "say hello"}}}, func(r api.ChatResponse) error {
			if r.Message.Content != "" {
				arrivals = append(arrivals, time.Now())
			}
			last = r
			return nil
		})
		if err != nil {
			t.Fatalf("chat through the helper: %v", err)
		}
		if !last.Done || len(arrivals) < 2 || len(arrivals) > realTokens {
			t.Fatalf("%d token chunks, done=%v; want 2 to %d chunks ending done", len(arrivals), last.Done, realTokens)
		}
		assertIncremental(t, arrivals, last.EvalDuration)
	})

	t.Run("/v1/chat/completions streams SSE token by token", func(t *testing.T) {
		body := `{"model":"` + model + `","stream":true,"max_tokens":` + itoa(realTokens) + `,"messages":[{"role":"user","content":"say hello"}]}`
		resp, err := plain.Post(helper+"/v1/chat/completions", "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "text/event-stream" {
			t.Fatalf("status %d, Content-Type %q; want 200 text/event-stream", resp.StatusCode, resp.Header.Get("Content-Type"))
		}
		start := time.Now()
		arrivals, done := readSSE(t, resp.Body)
		if !done || len(arrivals) < 2 {
			t.Fatalf("%d content events, data: [DONE] %v; want a stream of tokens ending with [DONE]", len(arrivals), done)
		}
		// /v1 carries no eval_duration: the tokens must be spread over
		// at least half of the whole request's time.
		assertIncremental(t, arrivals, time.Since(start))
	})

	t.Run("curl streams both, as the agent would run it", func(t *testing.T) {
		// The SSE stream carries no timing of its own: it is held to the
		// NDJSON one's eval_duration, the same server making as many tokens.
		var evalTime time.Duration
		for _, c := range []struct{ path, body, framing string }{
			{"/api/chat", `{"model":"` + model + `","options":{"num_predict":` + itoa(realTokens) + `},"messages":[{"role":"user","content":"say hello"}]}`, "ndjson"},
			{"/v1/chat/completions", `{"model":"` + model + `","stream":true,"max_tokens":` + itoa(realTokens) + `,"messages":[{"role":"user","content":"say hello"}]}`, "sse"},
		} {
			argv := append(append([]string(nil), curl...), "-sSN", "--max-time", "60", "-H", "Content-Type: application/json", "-d", c.body, helper+c.path)
			cmd := exec.Command(argv[0], argv[1:]...)
			out, err := cmd.StdoutPipe()
			if err != nil {
				t.Fatal(err)
			}
			cmd.Stderr = os.Stderr
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			var arrivals []time.Time
			var done bool
			if c.framing == "ndjson" {
				var last struct {
					Done         bool  `json:"done"`
					EvalDuration int64 `json:"eval_duration"`
				}
				sc := bufio.NewScanner(out)
				for sc.Scan() {
					arrivals = append(arrivals, time.Now())
					if err := json.Unmarshal(sc.Bytes(), &last); err != nil {
						t.Errorf("curl %s: line %q: %v", c.path, sc.Text(), err)
					}
				}
				done = last.Done
				evalTime = time.Duration(last.EvalDuration)
				if len(arrivals) > 1 {
					assertIncremental(t, arrivals[:len(arrivals)-1], evalTime)
				}
			} else {
				arrivals, done = readSSE(t, out)
				if len(arrivals) > 1 {
					assertIncremental(t, arrivals, evalTime)
				}
			}
			if err := cmd.Wait(); err != nil {
				t.Errorf("%s: %v", strings.Join(argv, " "), err)
			}
			if !done || len(arrivals) < 3 {
				t.Errorf("curl %s: %d lines or events, done %v; want a stream of tokens to its end", c.path, len(arrivals), done)
			}
		}
	})

	t.Run("Ollama's own Host and Origin rules pass through the proxy", func(t *testing.T) {
		// The Host the proxy forwards (Ollama's address, a loopback IP)
		// passes Ollama's Host rule, which applies as it listens on
		// loopback: every request above got its 200. An Origin Ollama does
		// not allow reaches Ollama unchanged and is refused by it — a bare
		// 403, not the proxy's refusal with a reason — and one it allows
		// passes.
		for _, c := range []struct {
			origin string
			want   int
		}{{"https://evil.example", http.StatusForbidden}, {"http://localhost:3000", http.StatusOK}} {
			req, _ := http.NewRequest("GET", helper+"/api/tags", nil)
			req.Header.Set("Origin", c.origin)
			resp, err := plain.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != c.want {
				t.Errorf("Origin %s through the helper: %d %s, want Ollama's %d", c.origin, resp.StatusCode, b, c.want)
			}
			if c.want == http.StatusForbidden && len(b) != 0 {
				t.Errorf("Origin %s: the 403 has a body %q; Ollama's own is bare (the proxy refused it instead?)", c.origin, b)
			}
		}
		// The same through HTTP_PROXY (the relay), as a tool that names
		// Ollama's address itself.
		out, err := exec.Command(curl[0], append(curl[1:], "-sS", "-o", "/dev/null", "-w", "%{http_code}", "-x", "http://"+e.Relay,
			"-H", "Origin: https://evil.example", "http://"+e.Ollama+"/api/tags")...).CombinedOutput()
		if err != nil || string(out) != "403" {
			t.Errorf("an Origin Ollama refuses, through the relay: %s %v, want 403", out, err)
		}
	})

	if code := u.interrupt(30 * time.Second); code != 0 {
		t.Errorf("slapenir up exited %d after Ctrl-C", code)
	}
}

// assertIncremental fails unless the arrivals are spread over at least a
// quarter of span (about how long the server spent producing them): a hop
// that holds the stream back delivers every token within a millisecond or
// two, while the server takes 0.1–0.5 s over them. A quarter leaves room
// for a loaded machine's jitter.
func assertIncremental(t *testing.T, arrivals []time.Time, span time.Duration) {
	t.Helper()
	spread := arrivals[len(arrivals)-1].Sub(arrivals[0])
	distinct := map[time.Time]bool{}
	for _, a := range arrivals {
		distinct[a.Truncate(time.Millisecond)] = true
	}
	t.Logf("%d chunks over %s (the server took %s), at %d distinct milliseconds", len(arrivals), spread, span, len(distinct))
	if len(distinct) < 10 || spread < span/4 {
		t.Errorf("%d chunks arrived within %s, at %d distinct milliseconds, while the server spent %s producing them: the stream was held back", len(arrivals), spread, len(distinct), span)
	}
}

// readSSE reads an SSE stream of chat.completion.chunk events, returning
// when each event with content arrived and whether data: [DONE] ended it.
func readSSE(t *testing.T, r io.Reader) (arrivals []time.Time, done bool) {
	t.Helper()
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		line := sc.Text()
		if line == "" {
			continue
		}
		data, ok := strings.CutPrefix(line, "data: ")
		if !ok {
			t.Errorf("SSE line %q is not a data: line", line)
			continue
		}
		if data == "[DONE]" {
			done = true
			continue
		}
		var chunk struct {
			Choices []struct {
				Delta struct {
					Content string `json:"content"`
				} `json:"delta"`
			} `json:"choices"`
		}
		if err := json.Unmarshal([]byte(data), &chunk); err != nil {
			t.Errorf("SSE data %q: %v", data, err)
			continue
		}
		if len(chunk.Choices) > 0 && chunk.Choices[0].Delta.Content != "" {
			arrivals = append(arrivals, time.Now())
		}
	}
	return arrivals, done
}

func itoa(n int) string {
	b, _ := json.Marshal(n)
	return string(b)
}
