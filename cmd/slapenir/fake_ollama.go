package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/slapenir/slapenir/internal/ollama/fake"
)

func runFakeOllama(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("fake-ollama", flag.ContinueOnError)
	fs.SetOutput(stderr)
	listen := fs.String("listen", "127.0.0.1:11434", "address to listen on; on a loopback address Ollama's Host rule applies")
	models := fs.String("models", fake.DefaultModel, "comma-separated models the fake has (more can be added with ollama pull)")
	tokens := fs.Int("tokens", 0, "answer with this many tokens (0: a short greeting)")
	firstByte := fs.Duration("first-byte-delay", 0, "wait this long before the first byte of an answer, as a model loading")
	tokenDelay := fs.Duration("token-delay", 0, "wait this long between two tokens")
	errorAfter := fs.Int("error-after", 0, "end every answer with an {\"error\": …} line after this many tokens (0: never)")
	errorMessage := fs.String("error-message", "", "the error of -error-after (default: a runner failure like Ollama's)")
	origins := fs.String("origins", os.Getenv("OLLAMA_ORIGINS"), "comma-separated extra allowed origins, like OLLAMA_ORIGINS")
	// list splits a comma-separated flag value, dropping empty items.
	list := func(s string) []string {
		var items []string
		for _, item := range strings.Split(s, ",") {
			if item = strings.TrimSpace(item); item != "" {
				items = append(items, item)
			}
		}
		return items
	}
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "fake-ollama: unexpected argument %q (all settings are flags; see -h)\n", fs.Arg(0))
		return 2
	}
	opts := fake.Options{
		Models:           list(*models),
		TokenCount:       *tokens,
		FirstByteDelay:   *firstByte,
		TokenDelay:       *tokenDelay,
		ErrorAfterTokens: *errorAfter,
		ErrorMessage:     *errorMessage,
		AllowedOrigins:   list(*origins),
	}

	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		fmt.Fprintf(stderr, "fake-ollama: listen on %s: %v (is a real Ollama already running there? use -listen 127.0.0.1:0)\n", *listen, err)
		return 1
	}
	s := fake.New(opts)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	go func() {
		<-ctx.Done()
		shutdown, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if s.Shutdown(shutdown) != nil {
			_ = s.Close()
		}
	}()
	fmt.Fprintf(stderr, "fake-ollama: serving a fake Ollama %s on http://%s with models %s\n",
		fake.Version, ln.Addr(), strings.Join(opts.Models, ", "))
	if err := s.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
		fmt.Fprintf(stderr, "fake-ollama: serving on %s: %v\n", ln.Addr(), err)
		return 1
	}
	return 0
}
