// Package safetext makes text a client or an upstream sent safe to put in
// a message, a log line or an audit record: printable and bounded. It
// owns that rule alone (the proxy and the relay both quote what peers
// send); it must not know where the text goes.
package safetext

import (
	"errors"
	"net/url"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Cut returns s with every character that is not printable (control
// characters, line and paragraph separators, invalid UTF-8) replaced by
// '?', cut to at most n bytes (at a character boundary) and then marked
// with "…".
func Cut(s string, n int) string {
	s = strings.Map(func(r rune) rune {
		if r == utf8.RuneError || !unicode.IsPrint(r) {
			return '?'
		}
		return r
	}, s)
	if len(s) <= n {
		return s
	}
	cut := n
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…"
}

// URLError drops net/http's `Get "url":` prefix from err, which would
// repeat the whole URL, query and all, in a message.
func URLError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}
