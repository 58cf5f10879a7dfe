package redact

import (
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"html"
	"math/rand/v2"
	"net/url"
	"slices"
	"strings"
	"testing"
	"unicode/utf16"
	"unicode/utf8"
)

// referenceRedact is the non-streaming definition the Writer must agree
// with: find every occurrence of every pattern in the whole input, widen it,
// and replace each run of overlapping occurrences with one replacement
// (touching runs get one replacement each).
func referenceRedact(r *Redactor, in []byte) ([]byte, int) {
	var hits []span
	// Case-insensitive forms are searched for in an ASCII-lowered copy.
	lower := make([]byte, len(in))
	for i, c := range in {
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		lower[i] = c
	}
	for pi := range r.m.pats {
		p := &r.m.pats[pi]
		hay := in
		if p.fold {
			hay = lower
		}
		for from := 0; ; {
			i := bytes.Index(hay[from:], p.core)
			if i < 0 {
				break
			}
			s, e, _ := p.extent(in, from+i, true)
			hits = append(hits, span{int64(s), int64(e)})
			from += i + 1
		}
	}
	for _, v := range r.views {
		v.find(in, 0, true, func(s, e int) { hits = append(hits, span{int64(s), int64(e)}) })
	}
	slices.SortFunc(hits, func(a, b span) int { return int(a.start - b.start) })
	var out []byte
	var covered int64
	n := 0
	c := int64(0)
	for _, h := range hits {
		if h.start > c {
			out = append(out, in[c:h.start]...)
			c = h.start
		}
		if h.start >= covered {
			out = append(out, r.replacement...)
			n++
		}
		covered = max(covered, h.end)
		c = max(c, covered)
	}
	if c < int64(len(in)) {
		out = append(out, in[c:]...)
	}
	return out, n
}

// encoders are independent of patterns.go: each turns a secret into one wire
// form the way a real producer would, with whatever surrounds it.
type encoder struct {
	name string
	enc  func(rng *rand.Rand, secret []byte) []byte
}

func encoders() []encoder {
	embed64 := func(e *base64.Encoding) func(*rand.Rand, []byte) []byte {
		return func(rng *rand.Rand, s []byte) []byte {
			pre := randBytes(rng, rng.IntN(7), allBytes)
			post := randBytes(rng, rng.IntN(7), allBytes)
			return []byte(e.EncodeToString(slices.Concat(pre, s, post)))
		}
	}
	jsonEnc := func(html bool) func(*rand.Rand, []byte) []byte {
		return func(_ *rand.Rand, s []byte) []byte {
			var b bytes.Buffer
			e := json.NewEncoder(&b)
			e.SetEscapeHTML(html)
			if err := e.Encode(string(s)); err != nil {
				panic(err)
			}
			return bytes.TrimSuffix(b.Bytes(), []byte("\n"))
		}
	}
	return []encoder{
		{"raw", func(_ *rand.Rand, s []byte) []byte { return s }},
		{"hex", func(_ *rand.Rand, s []byte) []byte { return []byte(hex.EncodeToString(s)) }},
		{"HEX", func(_ *rand.Rand, s []byte) []byte { return []byte(strings.ToUpper(hex.EncodeToString(s))) }},
		{"base64 std alone", func(_ *rand.Rand, s []byte) []byte { return []byte(base64.StdEncoding.EncodeToString(s)) }},
		{"base64 url raw alone", func(_ *rand.Rand, s []byte) []byte { return []byte(base64.RawURLEncoding.EncodeToString(s)) }},
		{"base64 std in run", embed64(base64.StdEncoding)},
		{"base64 std raw in run", embed64(base64.RawStdEncoding)},
		{"base64 url in run", embed64(base64.URLEncoding)},
		{"base64 url raw in run", embed64(base64.RawURLEncoding)},
		{"base64 std alone, query-escaped", func(_ *rand.Rand, s []byte) []byte {
			return []byte(url.QueryEscape(base64.StdEncoding.EncodeToString(s)))
		}},
		{"base64 std in run, query-escaped", func(rng *rand.Rand, s []byte) []byte {
			return []byte(url.QueryEscape(string(embed64(base64.StdEncoding)(rng, s))))
		}},
		{"base64 std in run, lower-case query-escaped", func(rng *rand.Rand, s []byte) []byte {
			return []byte(lowerPct(url.QueryEscape(string(embed64(base64.StdEncoding)(rng, s)))))
		}},
		{"base64 std in run, JSON with escaped solidus", func(rng *rand.Rand, s []byte) []byte {
			return bytes.ReplaceAll(embed64(base64.StdEncoding)(rng, s), []byte("/"), []byte(`\/`))
		}},
		{"percent, each byte escaped or not at random", pctMixed},
		{"percent all upper", func(_ *rand.Rand, s []byte) []byte { return pctAll(s, "%%%02X") }},
		{"percent all lower", func(_ *rand.Rand, s []byte) []byte { return pctAll(s, "%%%02x") }},
		{"url.QueryEscape", func(_ *rand.Rand, s []byte) []byte { return []byte(url.QueryEscape(string(s))) }},
		{"url.PathEscape", func(_ *rand.Rand, s []byte) []byte { return []byte(url.PathEscape(string(s))) }},
		{"url.QueryEscape lower", func(_ *rand.Rand, s []byte) []byte {
			return []byte(lowerPct(url.QueryEscape(string(s))))
		}},
		{"json", jsonEnc(false)},
		{"json html-safe", jsonEnc(true)},
		{"json escaped solidus", func(rng *rand.Rand, s []byte) []byte {
			return bytes.ReplaceAll(jsonEnc(false)(rng, s), []byte("/"), []byte(`\/`))
		}},
		{"json, each character escaped or not at random", jsonMixed},
		{"json PHP default", func(rng *rand.Rand, s []byte) []byte {
			var b strings.Builder
			for _, r := range string(jsonEnc(false)(rng, s)) {
				switch {
				case r == '/':
					b.WriteString(`\/`)
				case r > 0xFFFF:
					r -= 0x10000
					fmt.Fprintf(&b, "\\u%04x\\u%04x", 0xD800+(r>>10), 0xDC00+(r&0x3FF))
				case r >= 0x80:
					fmt.Fprintf(&b, "\\u%04x", r)
				default:
					b.WriteRune(r)
				}
			}
			return []byte(b.String())
		}},
		{`json all \u`, func(_ *rand.Rand, s []byte) []byte { return jsonAllU(s, "\\u%04x") }},
		{`json all \U`, func(_ *rand.Rand, s []byte) []byte { return jsonAllU(s, "\\u%04X") }},
		{"RAW upper-cased", func(_ *rand.Rand, s []byte) []byte { return asciiCase(nil, s) }},
		{"raw, each letter's case at random", asciiCase},
		{"hex, each digit's case at random", func(rng *rand.Rand, s []byte) []byte { return asciiCase(rng, []byte(hex.EncodeToString(s))) }},
		{"utf-16le", func(_ *rand.Rand, s []byte) []byte { return utf16Bytes(s, binary.LittleEndian) }},
		{"utf-16be", func(_ *rand.Rand, s []byte) []byte { return utf16Bytes(s, binary.BigEndian) }},
		{"UTF-16LE upper-cased", func(_ *rand.Rand, s []byte) []byte { return utf16Bytes(asciiCase(nil, s), binary.LittleEndian) }},
		{"html.EscapeString", func(_ *rand.Rand, s []byte) []byte { return []byte(html.EscapeString(string(s))) }},
		{"html all decimal", func(_ *rand.Rand, s []byte) []byte { return htmlAll(s, "&#%d;") }},
		{"html all hex", func(_ *rand.Rand, s []byte) []byte { return htmlAll(s, "&#x%x;") }},
		{"html all HEX, leading zeros", func(_ *rand.Rand, s []byte) []byte { return htmlAll(s, "&#X%05X;") }},
		{"html all decimal without semicolons", func(_ *rand.Rand, s []byte) []byte {
			return bytes.ReplaceAll(htmlAll(s, "&#%d;"), []byte(";&"), []byte("&"))
		}},
		{"html, each character escaped or not at random", htmlMixed},
	}
}

// asciiCase gives each ASCII letter of s a random case, or upper case when
// rng is nil; other bytes are kept.
func asciiCase(rng *rand.Rand, s []byte) []byte {
	out := bytes.Clone(s)
	for i, c := range out {
		if ('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z') && (rng == nil || rng.IntN(2) == 0) {
			out[i] = c ^ 0x20
			if rng == nil {
				out[i] = c &^ 0x20
			}
		}
	}
	return out
}

// utf16Bytes is s (UTF-8, other bytes as Latin-1) in UTF-16 of the given
// byte order.
func utf16Bytes(s []byte, order binary.AppendByteOrder) []byte {
	var runes []rune
	for len(s) > 0 {
		r, size := utf8.DecodeRune(s)
		if r == utf8.RuneError && size == 1 {
			r = rune(s[0])
		}
		runes = append(runes, r)
		s = s[size:]
	}
	var out []byte
	for _, u := range utf16.Encode(runes) {
		out = order.AppendUint16(out, u)
	}
	return out
}

func htmlAll(s []byte, format string) []byte {
	var b strings.Builder
	for _, r := range string(s) {
		fmt.Fprintf(&b, format, r)
	}
	return []byte(b.String())
}

// htmlMixed writes each character of s its own way, picked at random: as
// itself, decimal, hexadecimal with random case, or a named reference where
// HTML has one for it.
func htmlMixed(rng *rand.Rand, s []byte) []byte {
	named := map[rune]string{'_': "&lowbar;", '.': "&period;", '-': "&#45;", '/': "&sol;", ':': "&colon;", '&': "&amp;", '"': "&quot;", '<': "&lt;", '+': "&plus;", '=': "&equals;"}
	var b strings.Builder
	for _, r := range string(s) {
		switch choice := rng.IntN(4); {
		case choice == 0 && r != '&':
			b.WriteRune(r)
		case choice == 1:
			fmt.Fprintf(&b, "&#%d;", r)
		case choice == 2 && named[r] != "":
			b.WriteString(named[r])
		default:
			b.Write(asciiCase(rng, []byte(fmt.Sprintf("&#x%x;", r))))
		}
	}
	return []byte(b.String())
}

// jsonMixed escapes each character of s its own way, picked at random: as
// itself where JSON allows, as a short escape where one exists, or as
// \uXXXX with each hex digit in random case.
func jsonMixed(rng *rand.Rand, s []byte) []byte {
	short := map[rune]string{'"': `\"`, '\\': `\\`, '/': `\/`, '\n': `\n`, '\t': `\t`, '\r': `\r`, '\b': `\b`, '\f': `\f`}
	var b strings.Builder
	u := func(v rune) {
		h := []byte(fmt.Sprintf("%04x", v))
		for i := range h {
			if rng.IntN(2) == 0 {
				h[i] = bytes.ToUpper(h[i : i+1])[0]
			}
		}
		b.WriteString(`\u` + string(h))
	}
	for _, r := range string(s) {
		switch choice := rng.IntN(3); {
		case choice == 0 && r >= 0x20 && r != '"' && r != '\\':
			b.WriteRune(r)
		case choice == 1 && short[r] != "":
			b.WriteString(short[r])
		case r > 0xFFFF:
			u(0xD800 + (r-0x10000)>>10)
			u(0xDC00 + (r-0x10000)&0x3FF)
		default:
			u(r)
		}
	}
	return []byte(b.String())
}

// pctMixed escapes a random subset of s's bytes as %XX, each hex digit in
// random case; '%' itself is always escaped, as it must be.
func pctMixed(rng *rand.Rand, s []byte) []byte {
	var b []byte
	for _, c := range s {
		if c != '%' && rng.IntN(2) == 0 {
			b = append(b, c)
			continue
		}
		h := []byte(fmt.Sprintf("%02x", c))
		for i := range h {
			if rng.IntN(2) == 0 {
				h[i] = bytes.ToUpper(h[i : i+1])[0]
			}
		}
		b = append(append(b, '%'), h...)
	}
	return b
}

func pctAll(s []byte, format string) []byte {
	var b strings.Builder
	for _, c := range s {
		fmt.Fprintf(&b, format, c)
	}
	return []byte(b.String())
}

func lowerPct(s string) string {
	b := []byte(s)
	for i := range b {
		if b[i] == '%' && i+2 < len(b) {
			b[i+1] = bytes.ToLower(b[i+1 : i+2])[0]
			b[i+2] = bytes.ToLower(b[i+2 : i+3])[0]
		}
	}
	return string(b)
}

// jsonAllU escapes every UTF-16 code unit; the test secrets are valid UTF-8.
func jsonAllU(s []byte, format string) []byte {
	var b strings.Builder
	for _, r := range string(s) {
		if r > 0xFFFF {
			r -= 0x10000
			fmt.Fprintf(&b, format, 0xD800+(r>>10))
			fmt.Fprintf(&b, format, 0xDC00+(r&0x3FF))
			continue
		}
		fmt.Fprintf(&b, format, r)
	}
	return []byte(b.String())
}

// forbidden lists byte strings that must not survive redaction: each
// encoder's output for the secret alone, and for base64 at each alignment
// the characters that do not depend on neighbouring bytes — found by
// encoding with all-zero and all-one neighbours and keeping the characters
// on which both agree, so the check does not reuse patterns.go's arithmetic.
func forbidden(secret []byte) [][]byte {
	rng := rand.New(rand.NewPCG(1, 2))
	var out [][]byte
	for _, e := range encoders() {
		if strings.Contains(e.name, "in run") {
			continue
		}
		out = append(out, e.enc(rng, secret))
	}
	around := func(a int, fill byte) []byte {
		return slices.Concat(bytes.Repeat([]byte{fill}, a), secret, bytes.Repeat([]byte{fill}, 2))
	}
	for _, e := range []*base64.Encoding{base64.RawStdEncoding, base64.RawURLEncoding} {
		for a := 0; a < 3; a++ {
			zeros, ones := e.EncodeToString(around(a, 0)), e.EncodeToString(around(a, 0xFF))
			var stable []byte
			for i := range zeros {
				if zeros[i] == ones[i] {
					stable = append(stable, zeros[i])
				}
			}
			out = append(out, stable)
		}
	}
	return out
}

const (
	allBytes = ""
	// nearMiss draws from characters that appear in every encoding, so
	// random data is full of partial matches.
	nearMiss = "ABCDEFabcdef0123456789+/=-_%\\u\"<>&: \n"
)

func randBytes(rng *rand.Rand, n int, alphabet string) []byte {
	b := make([]byte, n)
	for i := range b {
		if alphabet == allBytes {
			b[i] = byte(rng.UintN(256))
		} else {
			b[i] = alphabet[rng.IntN(len(alphabet))]
		}
	}
	return b
}

// testSecrets avoid the characters of "[REDACTED]" at their edges, so a
// replacement next to leftover bytes can never spell a secret by accident.
var testSecrets = [][]byte{
	[]byte("ghp_9aZ/k+Qx=7Lm_2"),
	[]byte("sk-proj:a&b<c>\"d\\e f"),
	[]byte("xoxb-ünï/cödé-🔑-token"),
	[]byte("0123456789abcdef"),
	// Its base64 forms contain '+' and '/', which queries and some JSON
	// encoders rewrite.
	[]byte("pw~?>~?>~?>~??>>z"),
}

// streamRedact runs in through a Writer, cutting it at cuts and flushing
// after the pieces flagged in flush; after every step the output so far must
// be a prefix of want.
func streamRedact(t testing.TB, r *Redactor, in []byte, cuts []int, flush []bool, want []byte) ([]byte, int) {
	t.Helper()
	var out bytes.Buffer
	w := r.NewWriter(&out)
	prev := 0
	for k, c := range append(cuts, len(in)) {
		if _, err := w.Write(in[prev:c]); err != nil {
			t.Fatalf("Write: %v", err)
		}
		prev = c
		if k < len(flush) && flush[k] {
			if err := w.Flush(); err != nil {
				t.Fatalf("Flush: %v", err)
			}
		}
		if want != nil && !bytes.HasPrefix(want, out.Bytes()) {
			t.Fatalf("after cut %d (cuts %v, flush %v) the output is not a prefix of the expected one:\n got %q\nwant %q", c, cuts, flush, out.Bytes(), want)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	return out.Bytes(), w.Count()
}

func assertClean(t testing.TB, out []byte, secrets [][]byte) {
	t.Helper()
	for si, s := range secrets {
		for _, f := range forbidden(s) {
			if bytes.Contains(out, f) {
				t.Fatalf("output still holds secret #%d as %q:\n%q", si+1, f, out)
			}
		}
	}
}
