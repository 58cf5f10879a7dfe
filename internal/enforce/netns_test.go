package enforce

import (
	"errors"
	"syscall"
	"testing"
	"time"

	"github.com/slapenir/slapenir/internal/enforce/enforcetest"
)

// blockWait is how long a probe waits before it calls silence a drop.
const blockWait = 400 * time.Millisecond

func target(tn *enforcetest.Net) Target { return Target{NetNS: tn.Path} }

// isDropped reports whether a dial or send error is what a firewall drop
// looks like from the sender: silence until the timeout, or the kernel's
// local EPERM.
func isDropped(err error) bool {
	return err != nil && (errors.Is(err, syscall.EPERM) || isTimeout(err))
}

// mustBeDropped fails unless err is a drop; what says which probe it was.
func mustBeDropped(t *testing.T, what string, err error) {
	t.Helper()
	if !isDropped(err) {
		t.Errorf("%s: got %v, want it dropped (timeout or EPERM)", what, err)
		return
	}
	t.Logf("%s: dropped (%v)", what, err)
}
