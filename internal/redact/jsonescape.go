package redact

import (
	"bytes"
	"unicode/utf8"
)

// decodeJSONEscape decodes the JSON string escape at b[0] == '\\'. Lone surrogates decode
// to U+FFFD, as encoding/json does.
func decodeJSONEscape(b []byte, final bool) (dec decoded, size int, kind escapeKind) {
	short := func() (decoded, int, escapeKind) { return cutShort('\\', final) }
	if len(b) < 2 {
		return short()
	}
	switch b[1] {
	case '"', '\\', '/':
		return one(b[1]), 2, escaped
	case 'b':
		return one('\b'), 2, escaped
	case 'f':
		return one('\f'), 2, escaped
	case 'n':
		return one('\n'), 2, escaped
	case 'r':
		return one('\r'), 2, escaped
	case 't':
		return one('\t'), 2, escaped
	case 'u':
	default:
		return one('\\'), 1, literal
	}
	r, ok, full := hex4(b[2:])
	switch {
	case !ok:
		return one('\\'), 1, literal
	case !full:
		return short()
	}
	if 0xD800 <= r && r < 0xDC00 {
		// A high surrogate wants "\uDC00"–"\uDFFF" next.
		lo, ok, full := rune(0), false, false
		if len(b) >= 8 && b[6] == '\\' && b[7] == 'u' {
			lo, ok, full = hex4(b[8:])
		} else if len(b) < 8 && bytes.HasPrefix([]byte(`\u`), b[6:]) {
			ok = true
		}
		switch {
		case ok && !full && !final:
			return decoded{}, 0, incomplete
		case ok && full && 0xDC00 <= lo && lo < 0xE000:
			return runeOf(0x10000 + (r-0xD800)<<10 + (lo - 0xDC00)), 12, escaped
		}
		r = utf8.RuneError
	} else if 0xDC00 <= r && r < 0xE000 {
		r = utf8.RuneError
	}
	return runeOf(r), 6, escaped
}

// hex4 parses up to four hex digits: ok is false on a non-hex byte, full is
// true when all four were there.
func hex4(b []byte) (r rune, ok, full bool) {
	for i := 0; i < 4; i++ {
		if i == len(b) {
			return 0, true, false
		}
		d, isHex := hexDigit(b[i])
		if !isHex {
			return 0, false, false
		}
		r = r<<4 | rune(d)
	}
	return r, true, true
}
