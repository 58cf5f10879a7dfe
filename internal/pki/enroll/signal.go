package enroll

import (
	"context"
	"os"
	"os/signal"
)

// ForceOnSignal returns a channel that receives each time the process gets
// one of sigs (SIGHUP for `certs renew --daemon`), until ctx ends.
func ForceOnSignal(ctx context.Context, sigs ...os.Signal) <-chan struct{} {
	in := make(chan os.Signal, 1)
	signal.Notify(in, sigs...)
	out := make(chan struct{}, 1)
	go func() {
		defer signal.Stop(in)
		for {
			select {
			case <-ctx.Done():
				return
			case <-in:
				select {
				case out <- struct{}{}:
				default: // a renewal is already pending
				}
			}
		}
	}()
	return out
}
