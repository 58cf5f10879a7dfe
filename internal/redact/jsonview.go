package redact

import (
	"bytes"
	"sort"
	"unicode/utf8"
)

// jsonView finds secrets written as JSON string content with any mixture of
// escapes (each character literal, short-escaped or \uXXXX in either case),
// which no list of fixed forms can cover. A hit is a span that, decoded as
// JSON string content starting at its first byte, equals a secret and
// contains at least one escape (escape-free hits are raw hits). The
// definition depends only on the span's bytes, so where a stream is cut
// cannot change what is found.
//
// Every such hit has a first backslash p: before it, literal bytes; from p
// on, a decoding that is fixed by p alone. So the view looks only at
// backslashes, which bytes.IndexByte finds fast, and skips those whose escape
// decodes to bytes no secret contains (\n, \" in most responses).
type jsonView struct {
	secrets  [][]byte // sorted, unique
	inSecret [256]bool
	// useless marks the bytes that, after a backslash, make an escape no
	// hit can contain: a short escape for a byte no secret has, or no
	// valid escape at all. It lets most backslashes be passed over with
	// one lookup.
	useless [256]bool
	maxLen  int
}

func newJSONView(secrets [][]byte) *jsonView {
	v := &jsonView{}
	for _, s := range secrets {
		v.secrets = append(v.secrets, s)
		v.maxLen = max(v.maxLen, len(s))
		for _, b := range s {
			v.inSecret[b] = true
		}
	}
	v.secrets = sortBytes(v.secrets)
	for c := range v.useless {
		dec, _, kind := decodeEscape([]byte{'\\', byte(c)}, true)
		v.useless[c] = c != 'u' && (kind != escaped || !v.possible(dec.bytes()))
	}
	return v
}

type escapeKind uint8

const (
	escaped    escapeKind = iota // a JSON escape: dec holds what it stands for
	literal                      // a backslash that starts no valid escape
	incomplete                   // input ends before the escape does
)

// decoded is what one escape stands for: up to four UTF-8 bytes.
type decoded struct {
	b [utf8.UTFMax]byte
	n int
}

func (d *decoded) bytes() []byte { return d.b[:d.n] }

func one(c byte) decoded { return decoded{b: [utf8.UTFMax]byte{c}, n: 1} }

func runeOf(r rune) decoded {
	var d decoded
	d.n = utf8.EncodeRune(d.b[:], r)
	return d
}

// decodeEscape decodes the escape at b[0] == '\\'. Lone surrogates decode
// to U+FFFD, as encoding/json does.
func decodeEscape(b []byte, final bool) (dec decoded, size int, kind escapeKind) {
	short := func() (decoded, int, escapeKind) {
		if final {
			return one('\\'), 1, literal
		}
		return decoded{}, 0, incomplete
	}
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
		c := b[i]
		switch {
		case '0' <= c && c <= '9':
			r = r<<4 | rune(c-'0')
		case 'a' <= c && c <= 'f':
			r = r<<4 | rune(c-'a'+10)
		case 'A' <= c && c <= 'F':
			r = r<<4 | rune(c-'A'+10)
		default:
			return 0, false, false
		}
	}
	return r, true, true
}

// anchors calls f for every backslash at or after from that can begin the
// escaped part of a hit, with the first byte a hit through it may start at.
func (v *jsonView) anchors(buf []byte, from int, final bool, f func(p, runStart int) bool) {
	for p := from; p < len(buf); p++ {
		k := bytes.IndexByte(buf[p:], '\\')
		if k < 0 {
			return
		}
		p += k
		if p+1 < len(buf) && v.useless[buf[p+1]] {
			continue
		}
		dec, _, kind := decodeEscape(buf[p:], final)
		if kind == literal || kind == escaped && !v.possible(dec.bytes()) {
			continue
		}
		runStart := max(bytes.LastIndexByte(buf[:p], '\\')+1, p-v.maxLen+1)
		if !f(p, runStart) {
			return
		}
	}
}

func (v *jsonView) possible(dec []byte) bool {
	for _, b := range dec {
		if !v.inSecret[b] {
			return false
		}
	}
	return true
}

// find reports every hit whose first backslash is at or after from.
func (v *jsonView) find(buf []byte, from int, final bool, hit func(start, end int)) {
	v.anchors(buf, from, final, func(p, runStart int) bool {
		for s := runStart; s <= p; s++ {
			v.walk(buf, s, p, final, func(e int) { hit(s, e) })
		}
		return true
	})
}

// growingFrom returns the first position at or after from where buffered
// bytes could still turn into a hit once more input arrives, or len(buf).
func (v *jsonView) growingFrom(buf []byte, from int) int {
	hold := len(buf)
	v.anchors(buf, from, false, func(p, runStart int) bool {
		for s := runStart; s <= p; s++ {
			if v.walk(buf, s, p, false, func(int) {}) {
				hold = s
				return false
			}
		}
		return true
	})
	return hold
}

// walk decodes buf from s (literal up to the backslash at p, JSON-decoded
// from p on) along the sorted secrets, reporting the end of each span that
// decodes to a whole secret and includes the escape at p. open reports that
// the input ran out while a secret could still be completed.
func (v *jsonView) walk(buf []byte, s, p int, final bool, hit func(end int)) (open bool) {
	lo, hi, depth := 0, len(v.secrets), 0
	feed := func(c byte) bool {
		lo, hi = v.narrow(lo, hi, depth, c)
		depth++
		return lo < hi
	}
	for _, c := range buf[s:p] {
		if !feed(c) {
			return false
		}
	}
	pos := p
	for {
		if pos > p && len(v.secrets[lo]) == depth {
			hit(pos)
		}
		longer := hi-lo > 1 || len(v.secrets[lo]) > depth
		if !longer {
			return false
		}
		if pos == len(buf) {
			return !final
		}
		if buf[pos] != '\\' {
			if !feed(buf[pos]) {
				return false
			}
			pos++
			continue
		}
		dec, size, kind := decodeEscape(buf[pos:], final)
		if kind == incomplete {
			return true
		}
		if kind == literal && pos == p {
			return false // no escape at p: not this view's hit
		}
		for _, c := range dec.bytes() {
			if !feed(c) {
				return false
			}
		}
		pos += size
	}
}

// narrow keeps, of the secrets in [lo, hi) (which share their first depth
// bytes), those whose next byte is c. The one of exactly depth bytes, if
// any, sorts first and is dropped.
func (v *jsonView) narrow(lo, hi, depth int, c byte) (int, int) {
	s := v.secrets[lo:hi]
	from := sort.Search(len(s), func(i int) bool { return len(s[i]) > depth && s[i][depth] >= c })
	to := sort.Search(len(s), func(i int) bool { return len(s[i]) > depth && s[i][depth] > c })
	return lo + from, lo + to
}
