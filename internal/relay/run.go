package relay

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"
)

// Listeners say where Run listens; an empty address leaves that listener off.
type Listeners struct {
	// Forward is the forward proxy's address, normally 127.0.0.1:3128.
	Forward string
	// Helper is the Ollama helper's address, normally 127.0.0.1:8765.
	Helper string
}

// shutdownGrace is how long requests in flight may finish once Run is asked
// to stop; streams still open after it are cut.
const shutdownGrace = 5 * time.Second

// Run serves r on the addresses of l until ctx ends, then stops accepting,
// lets requests in flight finish for a few seconds, and cuts the rest. It
// logs each listener's address once it accepts connections.
func Run(ctx context.Context, r *Relay, l Listeners, logf func(format string, args ...any)) error {
	type listener struct {
		name, addr string
		handler    http.Handler
	}
	var wanted []listener
	if l.Forward != "" {
		wanted = append(wanted, listener{"forward proxy (HTTP_PROXY, HTTPS_PROXY)", l.Forward, r.Forwarder()})
	}
	if l.Helper != "" {
		wanted = append(wanted, listener{"Ollama helper (OLLAMA_API_BASE)", l.Helper, r.OllamaHelper()})
	}
	if len(wanted) == 0 {
		return errors.New("relay: no listener to run (give the forward proxy's or the helper's address)")
	}
	var servers []*http.Server
	errc := make(chan error, len(wanted))
	for _, w := range wanted {
		ln, err := net.Listen("tcp", w.addr)
		if err != nil {
			for _, s := range servers {
				_ = s.Close()
			}
			return fmt.Errorf("relay: cannot listen on %s for the %s: %w (is another relay or helper running there?)", w.addr, w.name, err)
		}
		srv := NewServer(w.handler, logf)
		servers = append(servers, srv)
		logf("relay: %s listening on http://%s", w.name, ln.Addr())
		go func() { errc <- srv.Serve(ln) }()
	}
	var err error
	select {
	case <-ctx.Done():
	case err = <-errc:
		err = fmt.Errorf("relay: a listener stopped: %w", err)
	}
	sctx, cancel := context.WithTimeout(context.Background(), shutdownGrace)
	defer cancel()
	for _, s := range servers {
		if serr := s.Shutdown(sctx); serr != nil {
			_ = s.Close()
		}
	}
	r.Close()
	return err
}
