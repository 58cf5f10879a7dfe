package audit

import (
	"crypto/rand"
	"encoding/hex"
)

// NewRequestID returns 16 random hex digits: short enough to read in a log line,
// and 64 bits make a collision between two requests practically impossible.
func NewRequestID() string {
	var b [8]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails since Go 1.24
	return hex.EncodeToString(b[:])
}
