package verify

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/slapenir/slapenir/internal/ollama"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// Prefix starts every line the check prints, as in the seed.
const Prefix = "[ollama-verify] "

// Defaults of Config.
const (
	DefaultAttempts = 10
	DefaultWait     = 3 * time.Second
)

// Config is one check.
type Config struct {
	// Proxy is the proxy's base URL, e.g. https://proxy:3000.
	Proxy *url.URL
	// Transport reaches the proxy (with the agent's certificate for https).
	Transport http.RoundTripper
	// Target is Ollama's URL as the proxy should reach it, e.g.
	// http://host.docker.internal:11434.
	Target string
	// Model is the model that must be available, e.g. qwen2.5-coder:7b.
	Model string
	// Attempts is how many times /api/tags is tried (DefaultAttempts if 0),
	// Wait the pause between two tries (DefaultWait if 0).
	Attempts int
	Wait     time.Duration
	// Out receives the log lines.
	Out io.Writer
}

// Result is what the check found.
type Result struct {
	ProxyHealthy   bool
	Reachable      bool
	ModelAvailable bool
	// Models are the models Ollama listed.
	Models []string
	// Fake is set when the Ollama that answered is SLAPENIR's built-in fake.
	Fake bool
}

// Run logs the target, proxy and model, checks the proxy's health, and tries
// /api/tags through the proxy until it answers or Attempts are used up. The
// error says what failed (Ollama unreachable, or the model missing); the
// caller decides whether that is fatal.
func Run(ctx context.Context, cfg Config) (Result, error) {
	attempts, wait := cfg.Attempts, cfg.Wait
	if attempts <= 0 {
		attempts = DefaultAttempts
	}
	if wait <= 0 {
		wait = DefaultWait
	}
	logf := func(format string, args ...any) { fmt.Fprintf(cfg.Out, Prefix+format+"\n", args...) }
	client := &http.Client{Transport: cfg.Transport, Timeout: 30 * time.Second}
	proxy := strings.TrimSuffix(cfg.Proxy.String(), "/")

	logf("Target: %s", cfg.Target)
	logf("Proxy: %s", proxy)
	logf("Model: %s", cfg.Model)

	var res Result
	if err := health(ctx, client, proxy); err != nil {
		logf("WARNING: proxy health check failed: %v", err)
	} else {
		res.ProxyHealthy = true
		logf("Proxy is healthy")
	}

	var lastErr error
	for i := 1; i <= attempts; i++ {
		models, fake, err := tags(ctx, client, proxy, cfg.Target)
		if err == nil {
			res.Reachable, res.Models, res.Fake = true, models, fake
			break
		}
		lastErr = err
		if i == attempts {
			break
		}
		logf("Attempt %d/%d: Ollama not reachable through proxy (%v); retrying in %s", i, attempts, err, wait)
		select {
		case <-ctx.Done():
			return res, fmt.Errorf("ollama-verify: stopped while waiting for Ollama: %w", ctx.Err())
		case <-time.After(wait):
		}
	}
	if !res.Reachable {
		logf("WARNING: Ollama is not reachable through proxy after %d attempts: %v", attempts, lastErr)
		logf("Check that Ollama runs on the host (ollama serve) and listens where OLLAMA_HOST=%s says", strings.TrimPrefix(cfg.Target, "http://"))
		return res, fmt.Errorf("ollama-verify: Ollama at %s is not reachable through the proxy %s: %w", cfg.Target, proxy, lastErr)
	}
	if res.Fake {
		logf("NOTE: this is SLAPENIR's built-in fake Ollama, not a real model: its answers are canned (start Ollama, or set OLLAMA_HOST, for a real one)")
	}
	logf("Ollama is reachable through proxy!")
	if hasModel(res.Models, cfg.Model) {
		res.ModelAvailable = true
		logf("Model %s is available", cfg.Model)
		return res, nil
	}
	logf("WARNING: Model %s is not available (Ollama has: %s)", cfg.Model, listOrNone(res.Models))
	logf("Pull it on the host with: ollama pull %s", cfg.Model)
	return res, fmt.Errorf("ollama-verify: model %s is not available in Ollama at %s; run \"ollama pull %s\" on the host", cfg.Model, cfg.Target, cfg.Model)
}

func health(ctx context.Context, client *http.Client, proxy string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, proxy+"/health", nil)
	if err != nil {
		return err
	}
	resp, err := client.Do(req)
	if err != nil {
		return unwrap(err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<16))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s/health answered %s", proxy, resp.Status)
	}
	return nil
}

// tagsReply is the part of Ollama's /api/tags the check reads.
type tagsReply struct {
	Models []struct {
		Name string `json:"name"`
	} `json:"models"`
}

func tags(ctx context.Context, client *http.Client, proxy, target string) (models []string, fake bool, err error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, proxy+"/api/tags", nil)
	if err != nil {
		return nil, false, err
	}
	req.Header.Set("X-Target-URL", target)
	resp, err := client.Do(req)
	if err != nil {
		return nil, false, unwrap(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	if err != nil {
		return nil, false, fmt.Errorf("reading /api/tags: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		var e struct {
			Error string `json:"error"`
		}
		if json.Unmarshal(body, &e) == nil && e.Error != "" {
			return nil, false, fmt.Errorf("%s: %s", resp.Status, e.Error)
		}
		return nil, false, fmt.Errorf("/api/tags answered %s", resp.Status)
	}
	var tr tagsReply
	if err := json.Unmarshal(body, &tr); err != nil {
		return nil, false, fmt.Errorf("/api/tags is not Ollama's model list: %w", err)
	}
	for _, m := range tr.Models {
		models = append(models, m.Name)
	}
	return models, resp.Header.Get(ollama.FakeHeader) != "", nil
}

// hasModel matches the way Ollama names models: "llama3" is "llama3:latest".
func hasModel(models []string, want string) bool {
	norm := func(s string) string {
		if !strings.Contains(s, ":") {
			return s + ":latest"
		}
		return s
	}
	for _, m := range models {
		if norm(m) == norm(want) {
			return true
		}
	}
	return false
}

func listOrNone(models []string) string {
	if len(models) == 0 {
		return "no models"
	}
	return strings.Join(models, ", ")
}

func unwrap(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}
