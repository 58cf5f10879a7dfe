package fake

import (
	"encoding/json"
	"errors"
	"net/http"
	"time"
)

// ndjson writes one JSON object a line and flushes each line on its own, as
// Ollama's streamResponse does; the headers go out with the first line.
type ndjson struct {
	w http.ResponseWriter
}

func (n ndjson) line(v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	if n.w.Header().Get("Content-Type") == "" {
		n.w.Header().Set("Content-Type", "application/x-ndjson")
	}
	if _, err := n.w.Write(append(b, '\n')); err != nil {
		return err
	}
	return http.NewResponseController(n.w).Flush()
}

// isStreaming reads Ollama's "stream" field: absent means true.
func isStreaming(stream *bool) bool {
	return stream == nil || *stream
}

func (s *Server) handleChat(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	var req chatRequest
	if !decodeBody(w, r, &req, "ChatRequest") {
		return
	}
	if !s.checkModel(w, req.Model) {
		return
	}
	if len(req.Messages) == 0 {
		// Ollama answers a chat without messages by loading the model.
		writeJSON(w, http.StatusOK, chatResponse{Model: req.Model, CreatedAt: now(), Message: message{Role: "assistant"}, Done: true, DoneReason: "load"})
		return
	}
	var prompt []string
	for _, m := range req.Messages {
		prompt = append(prompt, m.Content)
	}
	promptTokens := countTokens(prompt...)

	if !isStreaming(req.Stream) {
		a, err := s.run(r.Context(), func(string) error { return nil })
		if s.failed(w, err) {
			return
		}
		writeJSON(w, http.StatusOK, chatResponse{
			Model: req.Model, CreatedAt: now(),
			Message: message{Role: "assistant", Content: a.text.String()},
			Done:    true, DoneReason: "stop", metrics: a.metrics(start, promptTokens),
		})
		return
	}
	out := ndjson{w}
	a, err := s.run(r.Context(), func(tok string) error {
		return out.line(chatResponse{Model: req.Model, CreatedAt: now(), Message: message{Role: "assistant", Content: tok}})
	})
	if s.failedStream(out, err) {
		return
	}
	_ = out.line(chatResponse{
		Model: req.Model, CreatedAt: now(), Message: message{Role: "assistant"},
		Done: true, DoneReason: "stop", metrics: a.metrics(start, promptTokens),
	})
}

func (s *Server) handleGenerate(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	var req generateRequest
	if !decodeBody(w, r, &req, "GenerateRequest") {
		return
	}
	if !s.checkModel(w, req.Model) {
		return
	}
	if req.Prompt == "" {
		// Ollama answers an empty prompt by loading the model.
		writeJSON(w, http.StatusOK, generateResponse{Model: req.Model, CreatedAt: now(), Done: true, DoneReason: "load"})
		return
	}
	promptTokens := countTokens(req.Prompt)
	final := func(a *answer, response string) generateResponse {
		m := a.metrics(start, promptTokens)
		// The context is the conversation's token ids, for the next call.
		ctx := make([]int, m.PromptEvalCount+m.EvalCount)
		for i := range ctx {
			ctx[i] = 1000 + i
		}
		return generateResponse{Model: req.Model, CreatedAt: now(), Response: response, Done: true, DoneReason: "stop", Context: ctx, metrics: m}
	}

	if !isStreaming(req.Stream) {
		a, err := s.run(r.Context(), func(string) error { return nil })
		if s.failed(w, err) {
			return
		}
		writeJSON(w, http.StatusOK, final(a, a.text.String()))
		return
	}
	out := ndjson{w}
	a, err := s.run(r.Context(), func(tok string) error {
		return out.line(generateResponse{Model: req.Model, CreatedAt: now(), Response: tok})
	})
	if s.failedStream(out, err) {
		return
	}
	_ = out.line(final(a, ""))
}

// checkModel answers 400 or 404 as Ollama does when model is missing or not
// one the fake has, and reports whether the request goes on.
func (s *Server) checkModel(w http.ResponseWriter, model string) bool {
	if model == "" {
		writeError(w, http.StatusBadRequest, "model is required")
		return false
	}
	if _, ok := s.lookup(model); !ok {
		writeError(w, http.StatusNotFound, notFound(model))
		return false
	}
	return true
}

// failed ends a non-streamed answer that did not complete: Ollama's 500
// with the error, a cut connection, or nothing when the client left.
func (s *Server) failed(w http.ResponseWriter, err error) bool {
	switch {
	case err == nil:
		return false
	case errors.Is(err, errModelFailed):
		writeError(w, http.StatusInternalServerError, s.opts.errorMessage())
	case errors.Is(err, errCut):
		panic(http.ErrAbortHandler)
	}
	return true
}

// failedStream ends a stream that did not complete: an {"error": …} line
// after the 200, a cut connection, or nothing when the client left.
func (s *Server) failedStream(out ndjson, err error) bool {
	switch {
	case err == nil:
		return false
	case errors.Is(err, errModelFailed):
		_ = out.line(errorResponse{Error: s.opts.errorMessage()})
	case errors.Is(err, errCut):
		panic(http.ErrAbortHandler)
	}
	return true
}

// now is the created_at of a response: UTC, as Ollama writes it.
func now() time.Time {
	return time.Now().UTC()
}
