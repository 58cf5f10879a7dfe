package up

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"time"

	"github.com/slapenir/slapenir/internal/ollama/fake"
)

// ollama is the Ollama the proxy forwards to: a real one that answered, or a
// fake served here.
type ollama struct {
	Host string // host:port as the proxy reaches it
	Fake bool
	// Tried says, for each address asked, what answered: "$OLLAMA_HOST
	// (unset)", "127.0.0.1:11434: connection refused", …
	Tried []string
	srv   *fake.Server
}

// defaultOllama is where Ollama listens when nobody said otherwise.
const defaultOllama = "127.0.0.1:11434"

// startOllama uses the first Ollama that answers /api/tags within a second
// — host ($OLLAMA_HOST), then Ollama's default address — else serves the
// fake on a free loopback port with model. What was tried is in Tried.
func startOllama(ctx context.Context, host, model string) (*ollama, error) {
	var tried, candidates []string
	if host != "" {
		candidates = append(candidates, host)
	} else {
		tried = append(tried, "$OLLAMA_HOST (unset)")
	}
	if host != defaultOllama {
		candidates = append(candidates, defaultOllama)
	}
	for _, h := range candidates {
		err := answersTags(ctx, h)
		if err == nil {
			return &ollama{Host: h, Tried: tried}, nil
		}
		what := h
		if h == host {
			what = "$OLLAMA_HOST=" + h
		}
		tried = append(tried, what+" ("+err.Error()+")")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	srv := fake.New(fake.Options{Models: []string{model}})
	go func() {
		if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
			_ = ln.Close()
		}
	}()
	return &ollama{Host: ln.Addr().String(), Fake: true, Tried: tried, srv: srv}, nil
}

// answersTags is why host is not an Ollama that answers, or nil.
func answersTags(ctx context.Context, host string) error {
	ctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+host+"/api/tags", nil)
	if err != nil {
		return err
	}
	// Straight to Ollama: an HTTP_PROXY of the user's must not decide this.
	client := &http.Client{Transport: &http.Transport{Proxy: nil}}
	resp, err := client.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET /api/tags answered %s", resp.Status)
	}
	return nil
}

func (o *ollama) stop(ctx context.Context) {
	if o.srv != nil {
		if o.srv.Shutdown(ctx) != nil {
			_ = o.srv.Close()
		}
	}
}
