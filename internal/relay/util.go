package relay

import (
	"errors"
	"log"
	"net/url"
	"strings"
	"unicode"
)

// sanitize makes client-supplied text safe to quote in a message: printable
// and bounded.
func sanitize(s string) string {
	const max = 200
	s = strings.Map(func(r rune) rune {
		if unicode.IsPrint(r) {
			return r
		}
		return '?'
	}, s)
	if len(s) > max {
		s = s[:max] + "…"
	}
	return s
}

// unwrapURLError drops net/http's `Get "url":` prefix, which would repeat the
// whole URL, query and all, in a message.
func unwrapURLError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

// newLogger adapts logf for net/http's ErrorLog.
func newLogger(logf func(string, ...any)) *log.Logger {
	return log.New(logfWriter(logf), "", 0)
}

type logfWriter func(string, ...any)

func (f logfWriter) Write(p []byte) (int, error) {
	f("%s", strings.TrimRight(string(p), "\n"))
	return len(p), nil
}
