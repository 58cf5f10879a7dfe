// Package poll waits in tests for something another goroutine or process
// brings about, checking often instead of sleeping a fixed time.
//
// It must only be imported from tests.
package poll

import (
	"testing"
	"time"
)

// Until checks cond every 20 ms and fails the test if it does not hold
// within 30 s: long enough for a loaded CI machine, short enough that a hang
// ends the test instead of the whole run.
func Until(t testing.TB, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not reached within 30s")
		}
		time.Sleep(20 * time.Millisecond)
	}
}
