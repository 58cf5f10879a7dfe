package relay

import (
	"context"
	"fmt"
	"net"
	"time"
)

// EnsureListening makes sure something accepts connections on addr: when
// nothing does, it calls start and waits until something does or ctx ends.
// It reports whether it called start. aider-ollama uses it to start the
// Ollama helper only when none runs yet; cancelling ctx with a cause (the
// helper exited) ends the wait with that cause.
func EnsureListening(ctx context.Context, addr string, start func() error) (bool, error) {
	if answers(ctx, addr) {
		return false, nil
	}
	if err := start(); err != nil {
		return true, err
	}
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		if answers(ctx, addr) {
			return true, nil
		}
		select {
		case <-ctx.Done():
			return true, fmt.Errorf("nothing listens on %s after starting it: %w", addr, context.Cause(ctx))
		case <-tick.C:
		}
	}
}

func answers(ctx context.Context, addr string) bool {
	d := net.Dialer{Timeout: 500 * time.Millisecond}
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return false
	}
	_ = c.Close()
	return true
}
