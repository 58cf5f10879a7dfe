package up

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	ollamapkg "github.com/slapenir/slapenir/internal/ollama"
	"github.com/slapenir/slapenir/internal/ollama/fake"
)

// ollama is the Ollama the proxy forwards to: a real one that answered, or a
// fake served here.
type ollama struct {
	Host string // host:port as the proxy reaches it
	Fake bool
	// Canned is set when the Ollama found answers as SLAPENIR's fake does
	// (ollama.FakeHeader): a fake run outside up, no real model.
	Canned bool
	// Tried says, for each address asked, what answered: "$OLLAMA_HOST
	// (unset)", "127.0.0.1:11434: connection refused", …
	Tried []string
	srv   *fake.Server
}

// defaultOllama is where Ollama listens when nobody said otherwise.
const defaultOllama = "127.0.0.1:11434"

// OllamaChoice says which Ollama up uses.
type OllamaChoice int

const (
	// OllamaAuto uses a real Ollama when one answers, else the fake.
	OllamaAuto OllamaChoice = iota
	// OllamaFake always serves the fake (--fake-ollama).
	OllamaFake
	// OllamaReal fails when no real Ollama answers (--no-fake-ollama).
	OllamaReal
)

// startOllama uses the first Ollama that answers /api/tags within a second
// — host ($OLLAMA_HOST), then Ollama's default address — else serves the
// fake on a free loopback port with model. What was tried is in Tried.
// choice may skip the search (OllamaFake) or refuse the fake (OllamaReal).
func startOllama(ctx context.Context, host, model string, choice OllamaChoice) (*ollama, error) {
	if choice == OllamaFake {
		return serveFake(model, []string{"nothing (--fake-ollama)"})
	}
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
		canned, err := answersTags(ctx, h)
		if err == nil {
			return &ollama{Host: h, Canned: canned, Tried: tried}, nil
		}
		what := h
		if h == host {
			what = "$OLLAMA_HOST=" + h
		}
		tried = append(tried, what+" ("+err.Error()+")")
	}
	if choice == OllamaReal {
		return nil, fmt.Errorf("up: no Ollama answers at %s, and --no-fake-ollama refuses the built-in fake: start Ollama (ollama serve) or set OLLAMA_HOST", strings.Join(tried, ", "))
	}
	return serveFake(model, tried)
}

// serveFake serves the fake Ollama with model on a free loopback port.
func serveFake(model string, tried []string) (*ollama, error) {
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

// answersTags is why host is not an Ollama that answers, or nil; canned
// says that what answers is SLAPENIR's fake.
func answersTags(ctx context.Context, host string) (canned bool, err error) {
	ctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+host+"/api/tags", nil)
	if err != nil {
		return false, err
	}
	// Straight to Ollama: an HTTP_PROXY of the user's must not decide this.
	client := &http.Client{Transport: &http.Transport{Proxy: nil}}
	resp, err := client.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return false, err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return false, fmt.Errorf("GET /api/tags answered %s", resp.Status)
	}
	return resp.Header.Get(ollamapkg.FakeHeader) != "", nil
}

// kind is how up's report labels o.
func (o *ollama) kind() string {
	switch {
	case o.Fake:
		return "the built-in fake: answers are canned"
	case o.Canned:
		return "SLAPENIR's fake Ollama, run outside up: answers are canned"
	}
	return "real"
}

func (o *ollama) stop(ctx context.Context) {
	if o.srv != nil {
		if o.srv.Shutdown(ctx) != nil {
			_ = o.srv.Close()
		}
	}
}
