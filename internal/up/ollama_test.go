package up

import (
	"context"
	"net"
	"strings"
	"testing"

	"github.com/slapenir/slapenir/internal/ollama/fake"
)

// TestStartOllamaSaysWhatItTried: with $OLLAMA_HOST unset and nothing at
// Ollama's default address, up serves its fake and says what it asked; an
// Ollama at $OLLAMA_HOST is used as it is. (When something does listen on
// 127.0.0.1:11434 here, the first case cannot be told apart and is skipped.)
func TestStartOllamaSaysWhatItTried(t *testing.T) {
	ctx := context.Background()
	if _, err := answersTags(ctx, defaultOllama); err == nil {
		t.Skipf("an Ollama answers at %s on this machine", defaultOllama)
	}
	o, err := startOllama(ctx, "", "m:1", OllamaAuto)
	if err != nil {
		t.Fatal(err)
	}
	defer o.stop(ctx)
	got := strings.Join(o.Tried, ", ")
	if !o.Fake || !strings.HasPrefix(got, "$OLLAMA_HOST (unset), 127.0.0.1:11434 (") {
		t.Fatalf("fake %v, tried %q", o.Fake, got)
	}

	realAddr := serveOllama(t)
	real, err := startOllama(ctx, realAddr, "m:1", OllamaAuto)
	if err != nil {
		t.Fatal(err)
	}
	if real.Fake || real.Host != realAddr {
		t.Fatalf("an Ollama answering at $OLLAMA_HOST was not used: %+v", real)
	}
	// The stand-in here is SLAPENIR's fake run outside up: said so, not
	// labelled real.
	if !real.Canned || !strings.Contains(real.kind(), "SLAPENIR's fake Ollama, run outside up") {
		t.Fatalf("an outside fake is labelled %q (canned %v)", real.kind(), real.Canned)
	}
	if !o.Fake || !strings.Contains(o.kind(), "built-in fake") {
		t.Fatalf("the built-in fake is labelled %q", o.kind())
	}

	// One that is set but does not answer is named with its value.
	dead, err := startOllama(ctx, "127.0.0.1:1", "m:1", OllamaAuto)
	if err != nil {
		t.Fatal(err)
	}
	defer dead.stop(ctx)
	if got := strings.Join(dead.Tried, ", "); !dead.Fake || !strings.HasPrefix(got, "$OLLAMA_HOST=127.0.0.1:1 (") || strings.Contains(got, "(unset)") {
		t.Fatalf("tried %q", got)
	}
}

// --no-fake-ollama with no Ollama fails, naming what was tried;
// --fake-ollama serves the fake even when a real one answers.
func TestOllamaChoice(t *testing.T) {
	ctx := context.Background()
	_, err := startOllama(ctx, "127.0.0.1:1", "m:1", OllamaReal)
	if err == nil || !strings.Contains(err.Error(), "no Ollama answers at $OLLAMA_HOST=127.0.0.1:1 (") || !strings.Contains(err.Error(), "--no-fake-ollama refuses the built-in fake") {
		t.Fatalf("OllamaReal without an Ollama: %v", err)
	}
	realAddr := serveOllama(t)
	o, err := startOllama(ctx, realAddr, "m:1", OllamaFake)
	if err != nil {
		t.Fatal(err)
	}
	defer o.stop(ctx)
	if !o.Fake || o.Host == realAddr || strings.Join(o.Tried, ",") != "nothing (--fake-ollama)" {
		t.Fatalf("OllamaFake: %+v", o)
	}
}

// serveOllama is an Ollama answering on loopback (the fake, standing in for
// a real one up should find), for the test's lifetime.
func serveOllama(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := fake.New(fake.Options{Models: []string{"m:1"}})
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return ln.Addr().String()
}
