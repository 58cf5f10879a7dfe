package enroll

import (
	"context"
	"time"

	"github.com/slapenir/slapenir/internal/pki/stepca"
)

// Backoff bounds between two tries against an unreachable CA.
const (
	firstBackoff = 250 * time.Millisecond
	maxBackoff   = 5 * time.Second
)

// retry calls try until it succeeds, fails for a reason retrying cannot fix,
// ctx ends, or deadline passes. Each failed try is reported through logf, so a
// user watching a booting container sees why it waits.
func retry(ctx context.Context, deadline time.Time, logf func(string, ...any), what string, try func() error) error {
	wait := firstBackoff
	for attempt := 1; ; attempt++ {
		err := try()
		if err == nil || !stepca.Retryable(err) {
			return err
		}
		left := time.Until(deadline)
		if left <= 0 {
			logf("try %d to %s failed: %v; giving up (timeout reached)", attempt, what, err)
			return err
		}
		wait = min(wait, left)
		logf("try %d to %s failed: %v; retrying in %s", attempt, what, err, wait.Round(time.Millisecond))
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return err
		case <-t.C:
		}
		wait = min(wait*2, maxBackoff)
	}
}
