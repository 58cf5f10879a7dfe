package relay

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"

	"github.com/slapenir/slapenir/internal/jsonreply"
)

// cutReporter passes an NDJSON stream through and, when it breaks before its
// end, adds one {"error": …} line before the break. Ollama's clients stop on
// an error line and report it; without it, a cut stream looks to them like
// an answer that simply ended early.
type cutReporter struct {
	body        io.ReadCloser
	what        string // who was streaming, for the message
	atLineStart bool   // the last byte passed on ended a line
	passed      int64
	pending     []byte // the error line, not yet read
	err         error  // the break, returned once pending is read
}

func (c *cutReporter) Read(p []byte) (int, error) {
	if c.err != nil {
		n := copy(p, c.pending)
		c.pending = c.pending[n:]
		if len(c.pending) > 0 {
			return n, nil
		}
		return n, c.err
	}
	n, err := c.body.Read(p)
	if n > 0 {
		c.passed += int64(n)
		c.atLineStart = p[n-1] == '\n'
	}
	if err == nil || errors.Is(err, io.EOF) {
		return n, err
	}
	line, _ := json.Marshal(jsonreply.Body{Error: fmt.Sprintf(
		"ollama helper: the stream from %s broke after %d bytes: %v (the proxy or Ollama stopped mid-answer)", c.what, c.passed, err)})
	if !c.atLineStart {
		c.pending = append(c.pending, '\n')
	}
	c.pending = append(append(c.pending, line...), '\n')
	c.err = err
	return n, nil
}

func (c *cutReporter) Close() error { return c.body.Close() }
