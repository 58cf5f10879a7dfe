package relay

import (
	"log"
	"strings"
)

// newLogger adapts logf for net/http's ErrorLog.
func newLogger(logf func(string, ...any)) *log.Logger {
	return log.New(logfWriter(logf), "", 0)
}

type logfWriter func(string, ...any)

func (f logfWriter) Write(p []byte) (int, error) {
	f("%s", strings.TrimRight(string(p), "\n"))
	return len(p), nil
}
