package fake

import (
	"context"
	"errors"
	"strings"
	"time"
)

// errModelFailed ends an answer the way a failing runner does; the caller
// turns it into Ollama's error line or error response.
var errModelFailed = errors.New("model failed mid-answer")

// errCut ends an answer by cutting the connection (BeforeToken said so).
var errCut = errors.New("connection cut by BeforeToken")

// answer is the outcome of one run of the fake model.
type answer struct {
	text      strings.Builder
	load      time.Duration
	eval      time.Duration
	evalCount int
}

// run plays the model: it waits FirstByteDelay (the load), then emits each
// token, TokenDelay apart, calling BeforeToken first. It stops with
// errModelFailed after ErrorAfterTokens tokens, with errCut when BeforeToken
// fails, with ctx's error when the client went away, or with emit's error.
func (s *Server) run(ctx context.Context, emit func(token string) error) (*answer, error) {
	a := &answer{}
	start := time.Now()
	if err := sleep(ctx, s.opts.FirstByteDelay); err != nil {
		return a, err
	}
	a.load = time.Since(start)
	evalStart := time.Now()
	defer func() { a.eval = time.Since(evalStart) }()

	tokens := s.opts.reply()
	for i, tok := range tokens {
		if s.opts.ErrorAfterTokens > 0 && i == s.opts.ErrorAfterTokens {
			return a, errModelFailed
		}
		if i > 0 {
			if err := sleep(ctx, s.opts.TokenDelay); err != nil {
				return a, err
			}
		}
		if s.opts.BeforeToken != nil {
			if err := s.opts.BeforeToken(ctx, i); err != nil {
				return a, errCut
			}
		}
		if err := emit(tok); err != nil {
			return a, err
		}
		a.text.WriteString(tok)
		a.evalCount++
	}
	// An error asked for after more tokens than the answer has still comes,
	// in place of the final line.
	if s.opts.ErrorAfterTokens > 0 && s.opts.ErrorAfterTokens >= len(tokens) {
		return a, errModelFailed
	}
	return a, nil
}

// metrics are the final stats of an answer to a prompt of promptTokens
// tokens, begun at start.
func (a *answer) metrics(start time.Time, promptTokens int) metrics {
	return metrics{
		TotalDuration:   time.Since(start),
		LoadDuration:    a.load,
		PromptEvalCount: promptTokens,
		// The fake does not evaluate prompts; a microsecond a token keeps
		// the field present and plausible for clients that divide by it.
		PromptEvalDuration: time.Duration(promptTokens) * time.Microsecond,
		EvalCount:          a.evalCount,
		EvalDuration:       a.eval,
	}
}

// countTokens approximates a tokenizer with words, at least one.
func countTokens(texts ...string) int {
	n := 0
	for _, t := range texts {
		n += len(strings.Fields(t))
	}
	return max(n, 1)
}

func sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
