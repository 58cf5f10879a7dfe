package redact

import (
	"bytes"
	"sort"
	"unicode/utf8"
)

// A decodeView finds secrets written in an escaping syntax whose escapes can
// be mixed freely with literal characters — JSON strings (\uXXXX, \n …),
// percent-encoding (%XX) and HTML character references (&#103;, &lowbar;) —
// which no list of fixed forms can cover. A hit is
// a span that, decoded from its first byte, equals a secret and contains at
// least one escape (escape-free hits are raw hits). The definition depends
// only on the span's bytes, so where a stream is cut cannot change what is
// found.
//
// Every such hit has a first escape at p: before it, literal bytes; from p
// on, a decoding fixed by p alone. So a view looks only at the escape
// character, which bytes.IndexByte finds fast, and skips escapes that decode
// to bytes no secret contains (\n and \" in most JSON, %20 in most URLs).
type decodeView struct {
	escape byte // the byte every escape starts with
	decode func(b []byte, final bool) (decoded, int, escapeKind)

	secrets  [][]byte // sorted, unique
	inSecret [256]bool
	// useless marks the bytes that, right after the escape byte, make an
	// escape no hit can contain, so most escapes are passed over with one
	// lookup.
	useless [256]bool
	maxLen  int
	// span is the most input one hit can cover: every byte of the longest
	// secret as the widest escape. The Redactor's window covers it.
	span int
}

func newDecodeView(secrets [][]byte, escape byte, decode func([]byte, bool) (decoded, int, escapeKind), widest int) *decodeView {
	v := &decodeView{escape: escape, decode: decode}
	for _, s := range secrets {
		v.secrets = append(v.secrets, s)
		v.maxLen = max(v.maxLen, len(s))
		for _, b := range s {
			v.inSecret[b] = true
		}
	}
	v.secrets = sortBytes(v.secrets)
	v.span = v.maxLen * widest
	return v
}

// newJSONView: after a backslash, only 'u' needs more bytes to decide.
func newJSONView(secrets [][]byte) *decodeView {
	// \uXXXX is the widest escape per byte (a surrogate pair, 12 bytes,
	// stands for four).
	v := newDecodeView(secrets, '\\', decodeJSONEscape, len(`\u0067`))
	for c := range v.useless {
		dec, _, kind := decodeJSONEscape([]byte{'\\', byte(c)}, true)
		v.useless[c] = c != 'u' && (kind != escaped || !v.possible(dec.bytes()))
	}
	return v
}

// newPercentView: after a '%', anything but a hex digit is no escape.
func newPercentView(secrets [][]byte) *decodeView {
	v := newDecodeView(secrets, '%', decodePercent, len("%67"))
	for c := range v.useless {
		_, isHex := hexDigit(byte(c))
		v.useless[c] = !isHex
	}
	return v
}

type escapeKind uint8

const (
	escaped    escapeKind = iota // a valid escape: dec holds what it stands for
	literal                      // an escape byte that starts no valid escape
	incomplete                   // input ends before the escape does
)

// decoded is what one escape stands for: up to four bytes.
type decoded struct {
	b [utf8.UTFMax]byte
	n int
}

func (d *decoded) bytes() []byte { return d.b[:d.n] }

// cutShort is a decoder's answer when the input ends inside an escape
// begun by esc: more input decides, unless there is no more, and then esc
// stands for itself.
func cutShort(esc byte, final bool) (decoded, int, escapeKind) {
	if final {
		return one(esc), 1, literal
	}
	return decoded{}, 0, incomplete
}

func one(c byte) decoded { return decoded{b: [utf8.UTFMax]byte{c}, n: 1} }

func runeOf(r rune) decoded {
	var d decoded
	d.n = utf8.EncodeRune(d.b[:], r)
	return d
}

// anchors calls f for every escape at or after from that can be the first
// escape of a hit, with the first byte a hit through it may start at.
func (v *decodeView) anchors(buf []byte, from int, final bool, f func(p, runStart int) bool) {
	for p := from; p < len(buf); p++ {
		k := bytes.IndexByte(buf[p:], v.escape)
		if k < 0 {
			return
		}
		p += k
		if p+1 < len(buf) && v.useless[buf[p+1]] {
			continue
		}
		dec, _, kind := v.decode(buf[p:], final)
		if kind == literal || kind == escaped && !v.possible(dec.bytes()) {
			continue
		}
		if !f(p, v.literalRunStart(buf, p, final)) {
			return
		}
	}
}

// literalRunStart is the first byte a hit whose first escape is at p may
// start at: after the last escape before p, since a hit starting earlier
// would have that one as its first, but not after an escape byte that
// starts no escape ("%zz", "&jerry"), which is a literal character like any
// other; and no more than a secret's length before p.
func (v *decodeView) literalRunStart(buf []byte, p int, final bool) int {
	lo := max(0, p-v.maxLen+1)
	for q := p; q > lo; {
		q = bytes.LastIndexByte(buf[lo:q], v.escape)
		if q < 0 {
			break
		}
		q += lo
		if _, _, kind := v.decode(buf[q:], final); kind != literal {
			return q + 1
		}
	}
	return lo
}

func (v *decodeView) possible(dec []byte) bool {
	for _, b := range dec {
		if !v.inSecret[b] {
			return false
		}
	}
	return true
}

// find reports every hit whose first escape is at or after from.
func (v *decodeView) find(buf []byte, from int, final bool, hit func(start, end int)) {
	v.anchors(buf, from, final, func(p, runStart int) bool {
		for s := runStart; s <= p; s++ {
			v.walk(buf, s, p, final, func(e int) { hit(s, e) })
		}
		return true
	})
}

// walk decodes buf from s (literal up to the escape at p, which anchors has
// checked is one, decoded from p on) along the sorted secrets, reporting the
// end of each span that decodes to a whole secret and includes the escape at
// p. open reports that the input ran out while a secret could still be
// completed.
func (v *decodeView) walk(buf []byte, s, p int, final bool, hit func(end int)) (open bool) {
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
		if buf[pos] != v.escape {
			if !feed(buf[pos]) {
				return false
			}
			pos++
			continue
		}
		dec, size, kind := v.decode(buf[pos:], final)
		if kind == incomplete {
			return true
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
func (v *decodeView) narrow(lo, hi, depth int, c byte) (int, int) {
	s := v.secrets[lo:hi]
	from := sort.Search(len(s), func(i int) bool { return len(s[i]) > depth && s[i][depth] >= c })
	to := sort.Search(len(s), func(i int) bool { return len(s[i]) > depth && s[i][depth] > c })
	return lo + from, lo + to
}
