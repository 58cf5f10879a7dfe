package fake

import (
	"context"
	"net"
	"time"
)

// DefaultModel is the model the fake has when Options.Models is empty: the
// seed's OLLAMA_MODEL default.
const DefaultModel = "qwen2.5-coder:7b"

// Version is what /api/version reports: the Ollama release whose wire format
// the fake copies.
const Version = "0.17.4"

// defaultReply is the answer when neither Tokens nor TokenCount is set, split
// the way a model emits it: one token per element.
var defaultReply = []string{"Hello", "!", " How", " can", " I", " help", " you", " today", "?"}

// Options configures a fake. The zero value is a working fake with the default
// model, the default reply, no delays, and no Host rule (like an Ollama
// listening on 0.0.0.0); Listen and Serve turn the Host rule on when the
// listener is on loopback, as Ollama does.
type Options struct {
	// Models are the models the fake has, e.g. "qwen2.5-coder:7b".
	// Empty means [DefaultModel]. /api/pull adds to them.
	Models []string

	// Tokens is the answer to every chat or generate request, one token per
	// element. Empty means TokenCount tokens, or a short greeting.
	Tokens []string
	// TokenCount, when Tokens is empty and TokenCount > 0, makes the answer
	// that many tokens long (the greeting's tokens, repeated).
	TokenCount int

	// FirstByteDelay is how long a chat or generate request waits before
	// anything, headers included, is written: the model loading and
	// evaluating the prompt.
	FirstByteDelay time.Duration
	// TokenDelay is the wait between two tokens (and between two pull
	// progress lines).
	TokenDelay time.Duration

	// ErrorAfterTokens > 0 makes a streamed answer stop after that many
	// tokens with an {"error": ErrorMessage} line, after a 200 — what Ollama
	// does when the runner fails mid-answer. A non-streamed answer then gets
	// a 500 with that error instead.
	ErrorAfterTokens int
	// ErrorMessage is the error of ErrorAfterTokens; empty means a message
	// like Ollama's when its runner dies.
	ErrorMessage string

	// AllowedOrigins are origins allowed besides Ollama's defaults, like
	// OLLAMA_ORIGINS ("*" allows all; one "*" wildcard per entry).
	AllowedOrigins []string

	// ListenAddr is the address the fake is considered to listen on: when it
	// is a loopback IP, the Host rule applies. Listen and Serve set it from
	// their listener; set it only when serving the handler some other way.
	ListenAddr net.Addr

	// OnRequest, if set, is called with every request as it arrives, before
	// any rule or route; it must not block for long.
	OnRequest func(Request)

	// BeforeToken, if set, is called before token index (from 0) of an
	// answer is written, and may block: tests use it to hold a token back
	// until they have seen the previous one. Returning an error cuts the
	// connection without a final line, as a crashed Ollama would.
	BeforeToken func(ctx context.Context, index int) error
}

// reply returns the tokens of an answer.
func (o *Options) reply() []string {
	if len(o.Tokens) > 0 {
		return o.Tokens
	}
	if o.TokenCount <= 0 {
		return defaultReply
	}
	tokens := make([]string, o.TokenCount)
	for i := range tokens {
		tokens[i] = defaultReply[i%len(defaultReply)]
	}
	return tokens
}

func (o *Options) errorMessage() string {
	if o.ErrorMessage != "" {
		return o.ErrorMessage
	}
	return "an error was encountered while running the model: unexpected EOF"
}

// Lockstep holds each token of an answer until the client has received the
// one before it: with its BeforeToken in Options, a stream only completes
// if every hop between the fake and the client passes each token on by
// itself, and the first reaches the client before the last is produced.
type Lockstep struct {
	got []chan struct{}
}

// NewLockstep is a Lockstep for an answer of n tokens.
func NewLockstep(n int) *Lockstep {
	l := &Lockstep{got: make([]chan struct{}, n)}
	for i := range l.got {
		l.got[i] = make(chan struct{})
	}
	return l
}

// Got tells the fake the client has token i (once per token).
func (l *Lockstep) Got(i int) { close(l.got[i]) }

// BeforeToken is the Options hook: token i waits for Got(i-1).
func (l *Lockstep) BeforeToken(ctx context.Context, i int) error {
	if i == 0 {
		return nil
	}
	select {
	case <-l.got[i-1]:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
