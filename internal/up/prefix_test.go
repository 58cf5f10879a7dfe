package up

import (
	"bytes"
	"strings"
	"syscall"
	"testing"
)

type brokenPipe struct{}

func (brokenPipe) Write([]byte) (int, error) { return 0, syscall.EPIPE }

// TestSinkOutlivesABrokenStdout: once up's stdout is a closed pipe (up |
// tee, tee gone), lines go to the fallback (stderr), then nowhere, and a
// part's writer never returns the error: exec would close that part's
// output pipe, and the part would die of SIGPIPE on its next line.
func TestSinkOutlivesABrokenStdout(t *testing.T) {
	var stderr bytes.Buffer
	s := &sink{w: brokenPipe{}, fallback: &stderr}
	w := s.writer("[proxy] ")
	if n, err := w.Write([]byte("first\nsecond\n")); err != nil || n != 13 {
		t.Fatalf("Write = %d, %v; want 13, nil", n, err)
	}
	s.printf("[up] stopped\n")
	if got := stderr.String(); got != "[proxy] first\n[proxy] second\n[up] stopped\n" {
		t.Fatalf("fallback got %q", got)
	}
	// The fallback breaks too: nothing fails, nothing is written.
	s.w = brokenPipe{}
	if _, err := w.Write([]byte("third\n")); err != nil {
		t.Fatal(err)
	}
	s.printf("[up] more\n")
	if s.w != nil || strings.Contains(stderr.String(), "third") {
		t.Fatalf("after both broke: writer %v, fallback holds %q", s.w, stderr.String())
	}
	if len(s.recent) != 5 {
		t.Fatalf("recent lines = %q, want all 5 kept for error messages", s.recent)
	}
}
