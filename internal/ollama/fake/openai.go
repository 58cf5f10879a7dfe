package fake

import (
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"time"
)

// sse writes Server-Sent Events as Ollama's /v1 middleware does:
// "data: <json>\n\n" per event, each flushed on its own.
type sse struct {
	w http.ResponseWriter
}

func (e sse) event(data []byte) error {
	if e.w.Header().Get("Content-Type") == "" {
		e.w.Header().Set("Content-Type", "text/event-stream")
	}
	if _, err := fmt.Fprintf(e.w, "data: %s\n\n", data); err != nil {
		return err
	}
	return http.NewResponseController(e.w).Flush()
}

func (e sse) json(v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return e.event(b)
}

// newOpenAIError is the body of a failed /v1 request. Ollama's middleware
// passes every handler error through with type "api_error".
func newOpenAIError(msg string) openAIError {
	var e openAIError
	e.Error.Message = msg
	e.Error.Type = "api_error"
	return e
}

// writeV1 writes a /v1 answer as Ollama's /v1 middleware does when it
// rewrites what the handler wrote: "application/json", and json.Encoder's
// trailing newline.
func writeV1(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		http.Error(w, `{"error":{"message":"fake ollama: encoding the response failed","type":"api_error"}}`, http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(append(b, '\n'))
}

// writeOpenAIError is a handler's error on /v1: its status, type
// "api_error".
func writeOpenAIError(w http.ResponseWriter, status int, msg string) {
	writeV1(w, status, newOpenAIError(msg))
}

// refuseOpenAI is the /v1 middleware's own 400, before any handler: gin's
// JSON (its content type, no newline) with type "invalid_request_error".
func refuseOpenAI(w http.ResponseWriter, msg string) {
	e := newOpenAIError(msg)
	e.Error.Type = "invalid_request_error"
	writeJSON(w, http.StatusBadRequest, e)
}

func (s *Server) handleChatCompletions(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	var req openAIChatRequest
	if err := decodeAs(r.Body, &req, "ChatCompletionRequest"); err != nil {
		refuseOpenAI(w, err.Error())
		return
	}
	if len(req.Messages) == 0 {
		refuseOpenAI(w, "[] is too short - 'messages'")
		return
	}
	if req.Model == "" {
		writeOpenAIError(w, http.StatusBadRequest, "model is required")
		return
	}
	if _, ok := s.lookup(req.Model); !ok {
		writeOpenAIError(w, http.StatusNotFound, notFound(req.Model))
		return
	}
	var prompt []string
	for _, m := range req.Messages {
		prompt = append(prompt, m.Content)
	}
	promptTokens := countTokens(prompt...)
	id := fmt.Sprintf("chatcmpl-%d", rand.IntN(999))
	stop := "stop"
	usage := func(a *answer) openAIUsage {
		return openAIUsage{PromptTokens: promptTokens, CompletionTokens: a.evalCount, TotalTokens: promptTokens + a.evalCount}
	}

	if !req.Stream {
		a, err := s.run(r.Context(), func(string) error { return nil })
		switch {
		case errors.Is(err, errModelFailed):
			writeOpenAIError(w, http.StatusInternalServerError, s.opts.errorMessage())
			return
		case errors.Is(err, errCut):
			panic(http.ErrAbortHandler)
		case err != nil:
			return
		}
		writeV1(w, http.StatusOK, openAIChatCompletion{
			ID: id, Object: "chat.completion", Created: start.Unix(), Model: req.Model, SystemFingerprint: "fp_ollama",
			Choices: []openAIChoice{{Message: message{Role: "assistant", Content: a.text.String()}, FinishReason: &stop}},
			Usage:   usage(a),
		})
		return
	}

	out := sse{w}
	chunk := func(content string, finish *string) openAIChunk {
		return openAIChunk{
			ID: id, Object: "chat.completion.chunk", Created: time.Now().Unix(), Model: req.Model, SystemFingerprint: "fp_ollama",
			Choices: []openAIChunkChoice{{Delta: message{Role: "assistant", Content: content}, FinishReason: finish}},
		}
	}
	a, err := s.run(r.Context(), func(tok string) error { return out.json(chunk(tok, nil)) })
	switch {
	case errors.Is(err, errModelFailed):
		// Ollama 0.17.4 turns a mid-stream error into an empty chunk; the
		// fake sends the error event OpenAI clients understand instead, so
		// tests can see it cross the relay.
		_ = out.json(newOpenAIError(s.opts.errorMessage()))
		return
	case errors.Is(err, errCut):
		panic(http.ErrAbortHandler)
	case err != nil:
		return
	}
	if out.json(chunk("", &stop)) != nil {
		return
	}
	if req.StreamOptions != nil && req.StreamOptions.IncludeUsage {
		last := chunk("", nil)
		last.Choices = []openAIChunkChoice{}
		u := usage(a)
		last.Usage = &u
		if out.json(last) != nil {
			return
		}
	}
	_ = out.event([]byte("[DONE]"))
}
