package fake

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"github.com/slapenir/slapenir/internal/ollama"
	"io"
	"net"
	"net/http"
	"sync"
	"time"
)

// Request is what the fake saw of one request, for tests to assert on.
type Request struct {
	Method string
	Path   string
	// Host is the Host header as received (the field Ollama's Host rule reads).
	Host string
	// Origin is the Origin header, empty when absent.
	Origin string
	Header http.Header
	// Body is the request body, up to maxRecordedBody bytes.
	Body []byte
}

// maxRecordedBody bounds what a recorded request keeps of its body; Ollama
// requests are small JSON documents, so anything longer is not a real client.
const maxRecordedBody = 1 << 20

// maxRecorded bounds how many requests Requests remembers, so a fake left
// running (fake-ollama under slapenir up) does not grow without end.
const maxRecorded = 1000

// Server is a fake Ollama. It is an http.Handler; Listen and Serve also run it
// on a listener of their own.
type Server struct {
	opts    Options
	handler http.Handler
	started time.Time

	mu       sync.Mutex
	models   []string // display names, in the order they were added
	requests []Request
	srv      *http.Server
	ln       net.Listener
}

// New returns a fake configured by opts.
func New(opts Options) *Server {
	s := &Server{opts: opts, started: time.Now().UTC().Truncate(time.Second)}
	s.models = append(s.models, opts.Models...)
	if len(s.models) == 0 {
		s.models = []string{DefaultModel}
	}
	s.handler = s.routes()
	return s
}

// Listen starts a fake on addr ("127.0.0.1:0" for any free port) and serves it
// until Close. The Host rule applies when addr is a loopback address.
func Listen(addr string, opts Options) (*Server, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("fake ollama: listen on %q: %w (is another Ollama already running there?)", addr, err)
	}
	s := New(opts)
	srv, err := s.attach(ln)
	if err != nil {
		_ = ln.Close()
		return nil, err
	}
	go func() { _ = srv.Serve(ln) }()
	return s, nil
}

// Serve serves the fake on ln until Close or Shutdown, and returns
// http.ErrServerClosed then. The Host rule follows ln, as in Ollama: it
// applies when ln is on a loopback address.
func (s *Server) Serve(ln net.Listener) error {
	srv, err := s.attach(ln)
	if err != nil {
		return err
	}
	return srv.Serve(ln)
}

// attach makes ln the fake's listener, before any request can arrive on it.
func (s *Server) attach(ln net.Listener) (*http.Server, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.srv != nil {
		return nil, errors.New("fake ollama: already serving; start another fake with New")
	}
	s.opts.ListenAddr = ln.Addr()
	// No WriteTimeout: like Ollama, a request may legitimately take minutes
	// before its first byte.
	s.srv = &http.Server{Handler: s, ReadHeaderTimeout: 10 * time.Second}
	s.ln = ln
	return s.srv, nil
}

// URL is the base URL of a fake started with Listen or Serve, e.g.
// "http://127.0.0.1:40123"; empty before.
func (s *Server) URL() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ln == nil {
		return ""
	}
	return "http://" + s.ln.Addr().String()
}

// Close stops the fake at once, cutting streams in the middle, as an Ollama
// that crashes or is killed would.
func (s *Server) Close() error {
	s.mu.Lock()
	srv := s.srv
	s.mu.Unlock()
	if srv == nil {
		return nil
	}
	return srv.Close()
}

// Shutdown stops accepting requests and waits for those in flight to finish,
// or for ctx to end.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	srv := s.srv
	s.mu.Unlock()
	if srv == nil {
		return nil
	}
	return srv.Shutdown(ctx)
}

// Requests returns the requests received so far, oldest first: all of them,
// or the last 1000 of a long-running fake.
func (s *Server) Requests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Request(nil), s.requests...)
}

// ServeHTTP records the request, applies Ollama's Origin and Host rules, and
// routes it.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rec := s.record(r)
	w.Header().Set(ollama.FakeHeader, "canned answers")
	if s.opts.OnRequest != nil {
		s.opts.OnRequest(rec)
	}
	if !s.allowOrigin(w, r) || !s.allowHost(w, r) {
		return
	}
	s.handler.ServeHTTP(w, r)
}

// record keeps a copy of the request, body included, and leaves r.Body
// readable again.
func (s *Server) record(r *http.Request) Request {
	var body []byte
	if r.Body != nil {
		b, err := io.ReadAll(io.LimitReader(r.Body, maxRecordedBody))
		if err == nil {
			body = b
		}
		r.Body = io.NopCloser(io.MultiReader(bytes.NewReader(b), r.Body))
	}
	rec := Request{
		Method: r.Method,
		Path:   r.URL.Path,
		Host:   r.Host,
		Origin: r.Header.Get("Origin"),
		Header: r.Header.Clone(),
		Body:   body,
	}
	s.mu.Lock()
	if len(s.requests) == maxRecorded {
		s.requests = append(s.requests[:0], s.requests[1:]...)
	}
	s.requests = append(s.requests, rec)
	s.mu.Unlock()
	return rec
}

func (s *Server) routes() http.Handler {
	mux := http.NewServeMux()
	// GET patterns also answer HEAD, as Ollama's "/", version and tags do.
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = io.WriteString(w, "Ollama is running")
	})
	mux.HandleFunc("GET /api/version", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"version": Version})
	})
	mux.HandleFunc("GET /api/tags", s.handleTags)
	mux.HandleFunc("POST /api/show", s.handleShow)
	mux.HandleFunc("POST /api/pull", s.handlePull)
	mux.HandleFunc("POST /api/chat", s.handleChat)
	mux.HandleFunc("POST /api/generate", s.handleGenerate)
	mux.HandleFunc("POST /v1/chat/completions", s.handleChatCompletions)
	mux.HandleFunc("GET /v1/models", s.handleModels)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, pattern := mux.Handler(r); pattern == "" {
			// No route: the mux says 404, or 405 with Allow. Ollama's gin
			// says it in its own words, as bare text/plain.
			rec := &statusOnly{header: w.Header()}
			mux.ServeHTTP(rec, r)
			w.Header().Del("X-Content-Type-Options")
			w.Header().Set("Content-Type", "text/plain")
			w.WriteHeader(rec.status)
			if rec.status == http.StatusMethodNotAllowed {
				_, _ = io.WriteString(w, "405 method not allowed")
			} else {
				_, _ = io.WriteString(w, "404 page not found")
			}
			return
		}
		mux.ServeHTTP(w, r)
	})
}

// statusOnly takes the mux's 404 or 405 (and its Allow header), and drops
// its body.
type statusOnly struct {
	header http.Header
	status int
}

func (s *statusOnly) Header() http.Header         { return s.header }
func (s *statusOnly) Write(b []byte) (int, error) { return len(b), nil }
func (s *statusOnly) WriteHeader(status int)      { s.status = status }
