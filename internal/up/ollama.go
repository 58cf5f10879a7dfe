package up

import (
	"context"
	"errors"
	"net"
	"net/http"
	"time"

	"github.com/slapenir/slapenir/internal/ollama/fake"
)

// ollama is the Ollama the proxy forwards to: a real one that answered, or a
// fake served here.
type ollama struct {
	Host string // host:port as the proxy reaches it
	Fake bool
	srv  *fake.Server
}

// startOllama uses host when it answers /api/tags within a second, else
// serves the fake on a free loopback port with model.
func startOllama(ctx context.Context, host, model string) (*ollama, error) {
	if host != "" && answersTags(ctx, host) {
		return &ollama{Host: host}, nil
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
	return &ollama{Host: ln.Addr().String(), Fake: true, srv: srv}, nil
}

func answersTags(ctx context.Context, host string) bool {
	ctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+host+"/api/tags", nil)
	if err != nil {
		return false
	}
	// Straight to Ollama: an HTTP_PROXY of the user's must not decide this.
	client := &http.Client{Transport: &http.Transport{Proxy: nil}}
	resp, err := client.Do(req)
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

func (o *ollama) stop(ctx context.Context) {
	if o.srv != nil {
		if o.srv.Shutdown(ctx) != nil {
			_ = o.srv.Close()
		}
	}
}
