package redact

import (
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"unicode/utf16"
	"unicode/utf8"
)

// pattern is one byte string to search for. For base64 forms core is the
// stable part of the encoding (the characters fully determined by the secret);
// the characters that mix secret bits with neighbouring bytes are added to the
// match by extension, so a hit redacts the full encoded span.
type pattern struct {
	core []byte
	// alpha is the base64 alphabet of this form, nil for non-base64 forms.
	alpha *[256]bool
	// back: the character before core carries secret bits when it belongs
	// to alpha.
	back bool
	// tail: the character after core carries secret bits when it belongs to
	// alpha, and up to two '=' of padding may follow it.
	tail bool
	// fold: core is lower case and matches ignoring ASCII letter case (an
	// upper-cased token is still the token; hex digits come in both cases).
	fold bool
}

// kind tells apart patterns with equal cores but different extensions.
func (p *pattern) kind() string {
	switch {
	case p.alpha == nil && p.fold:
		return "fold"
	case p.alpha == nil:
		return "plain"
	case p.alpha == urlAlpha:
		return fmt.Sprintf("url%t%t", p.back, p.tail)
	default:
		return fmt.Sprintf("std%t%t", p.back, p.tail)
	}
}

// tailExt is the most bytes a tail extension can add: one mixed character
// and two '='.
const tailExt = 3

// span is the longest stretch of input one hit on p can cover.
func (p *pattern) span() int {
	n := len(p.core)
	if p.back {
		n++
	}
	if p.tail {
		n += tailExt
	}
	return n
}

var (
	stdAlpha = alphabet("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/")
	urlAlpha = alphabet("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")
)

func alphabet(chars string) *[256]bool {
	var a [256]bool
	for i := 0; i < len(chars); i++ {
		a[chars[i]] = true
	}
	return &a
}

// patternsFor returns every form of secret selected by enc. Duplicates are
// possible (a secret without special characters percent-encodes to itself);
// the caller deduplicates.
func patternsFor(secret []byte, enc Encoding) []pattern {
	var out []pattern
	plain := func(b []byte) { out = append(out, pattern{core: b}) }
	anyCase := func(b []byte) { out = append(out, pattern{core: asciiLower(b), fold: true}) }
	if enc&Raw != 0 {
		anyCase(secret)
	}
	if enc&UTF16 != 0 {
		le, be := utf16Forms(secret)
		anyCase(le)
		anyCase(be)
	}
	if enc&Hex != 0 {
		anyCase([]byte(hex.EncodeToString(secret)))
	}
	if enc&Base64 != 0 {
		out = append(out, base64Forms(secret)...)
	}
	if enc&Percent != 0 {
		for _, s := range percentForms(secret) {
			plain([]byte(s))
		}
	}
	if enc&JSON != 0 {
		for _, s := range jsonForms(secret) {
			plain([]byte(s))
		}
	}
	return out
}

// utf16Forms is the secret in UTF-16, little- and big-endian, without a byte
// order mark (what Windows APIs, .NET and Java's UTF-16 writers put in a
// body). Bytes that are not UTF-8 stand for their Latin-1 code points, as in
// jsonForms.
func utf16Forms(secret []byte) (le, be []byte) {
	var units []uint16
	for s := secret; len(s) > 0; {
		r, size := utf8.DecodeRune(s)
		if r == utf8.RuneError && size == 1 {
			r = rune(s[0])
		}
		s = s[size:]
		units = utf16.AppendRune(units, r)
	}
	for _, u := range units {
		le = append(le, byte(u), byte(u>>8))
		be = append(be, byte(u>>8), byte(u))
	}
	return le, be
}

// base64Forms returns, for both alphabets and each offset a of the secret
// within a 3-byte group, the characters of the encoding that depend on the
// secret alone. Padding and the unpadded form differ only after the last
// mixed character, which the tail extension covers.
func base64Forms(secret []byte) []pattern {
	var out []pattern
	for _, alpha := range []struct {
		enc *base64.Encoding
		set *[256]bool
	}{{base64.RawStdEncoding, stdAlpha}, {base64.RawURLEncoding, urlAlpha}} {
		for a := 0; a < 3; a++ {
			// Zero bytes stand in for the unknown neighbours; the
			// characters they touch are cut off below.
			buf := make([]byte, a+len(secret)+2)
			copy(buf[a:], secret)
			enc := alpha.enc.EncodeToString(buf)
			firstBit, endBit := 8*a, 8*(a+len(secret))
			first := (firstBit + 5) / 6 // first character fully inside the secret
			end := endBit / 6           // one past the last such character
			core := enc[first:end]
			for _, form := range slices.Compact([]string{
				core,
				// Standard base64 is often carried inside another
				// encoding that rewrites its '+' and '/': a query
				// string, or JSON from an encoder that escapes '/'.
				stdInQuery.Replace(core),
				lowerEscapes(stdInQuery.Replace(core)),
				strings.ReplaceAll(core, "/", `\/`),
			}) {
				out = append(out, pattern{
					core:  []byte(form),
					alpha: alpha.set,
					back:  firstBit%6 != 0,
					tail:  endBit%6 != 0,
				})
			}
		}
	}
	return out
}

var stdInQuery = strings.NewReplacer("+", "%2B", "/", "%2F")

const upperHex = "0123456789ABCDEF"

// percentForms covers every byte escaped, plus what common escapers emit:
// Go's QueryEscape (space as '+') and PathEscape, and JavaScript's
// encodeURIComponent; each with upper- and lower-case hex digits.
func percentForms(secret []byte) []string {
	all := func(b byte) bool { return true }
	forms := []string{
		escapeBytes(secret, all),
		escapeBytes(secret, func(b byte) bool { return !isUnreserved(b, "-_.~") }),
		escapeBytes(secret, func(b byte) bool { return !isUnreserved(b, "-_.!~*'()") }),
		url.QueryEscape(string(secret)),
		url.PathEscape(string(secret)),
	}
	n := len(forms)
	for _, f := range forms[:n] {
		forms = append(forms, lowerEscapes(f))
	}
	return forms
}

func isUnreserved(b byte, marks string) bool {
	return 'a' <= b && b <= 'z' || 'A' <= b && b <= 'Z' || '0' <= b && b <= '9' || strings.IndexByte(marks, b) >= 0
}

func escapeBytes(s []byte, escape func(byte) bool) string {
	var sb strings.Builder
	for _, b := range s {
		if escape(b) {
			sb.WriteByte('%')
			sb.WriteByte(upperHex[b>>4])
			sb.WriteByte(upperHex[b&15])
		} else {
			sb.WriteByte(b)
		}
	}
	return sb.String()
}

func lowerEscapes(s string) string {
	b := []byte(s)
	for i := 0; i+2 < len(b); i++ {
		if b[i] == '%' {
			b[i+1] = lowerHexDigit(b[i+1])
			b[i+2] = lowerHexDigit(b[i+2])
			i += 2
		}
	}
	return string(b)
}

func lowerHexDigit(c byte) byte {
	if 'A' <= c && c <= 'F' {
		return c + 'a' - 'A'
	}
	return c
}

// jsonForms covers the escapers seen in practice: minimal (RFC 8259; JS,
// Jackson, serde), Go's HTML-safe default, an escaped solidus (some Java),
// non-ASCII as \uXXXX (Python's ensure_ascii), both of the latter (PHP), and
// every character as \uXXXX in lower and upper case.
func jsonForms(secret []byte) []string {
	minimal := jsonEscape(secret, jsonMinimal)
	html := jsonEscape(secret, jsonMinimal|jsonHTML)
	return []string{
		minimal,
		html,
		strings.ReplaceAll(minimal, "/", `\/`),
		strings.ReplaceAll(html, "/", `\/`),
		jsonEscape(secret, jsonMinimal|jsonNonASCII),
		// PHP's json_encode default: both of the above.
		strings.ReplaceAll(jsonEscape(secret, jsonMinimal|jsonNonASCII), "/", `\/`),
		jsonEscape(secret, jsonEverything),
		jsonEscape(secret, jsonEverything|jsonUpper),
	}
}

type jsonStyle uint8

const (
	jsonMinimal jsonStyle = 1 << iota
	jsonHTML
	jsonNonASCII
	jsonEverything
	jsonUpper
)

func jsonEscape(s []byte, style jsonStyle) string {
	var sb strings.Builder
	for len(s) > 0 {
		r, size := utf8.DecodeRune(s)
		raw := s[:size]
		s = s[size:]
		if r == utf8.RuneError && size == 1 {
			// Not UTF-8: no JSON encoder emits it verbatim; the common
			// lossless choice is the Latin-1 code point.
			r = rune(raw[0])
		}
		switch {
		case style&jsonEverything != 0:
			writeU(&sb, r, style&jsonUpper != 0)
		case r == '"':
			sb.WriteString(`\"`)
		case r == '\\':
			sb.WriteString(`\\`)
		case r == '\n':
			sb.WriteString(`\n`)
		case r == '\r':
			sb.WriteString(`\r`)
		case r == '\t':
			sb.WriteString(`\t`)
		case r < 0x20:
			writeU(&sb, r, false)
		case style&jsonHTML != 0 && (r == '<' || r == '>' || r == '&' || r == 0x2028 || r == 0x2029):
			writeU(&sb, r, false)
		case style&jsonNonASCII != 0 && r >= 0x80:
			writeU(&sb, r, false)
		case r >= 0x80 && string(raw) != string(r):
			writeU(&sb, r, false)
		default:
			sb.Write(raw)
		}
	}
	return sb.String()
}

// writeU writes r as \uXXXX, as a UTF-16 surrogate pair above U+FFFF.
func writeU(sb *strings.Builder, r rune, upper bool) {
	digits := "0123456789abcdef"
	if upper {
		digits = upperHex
	}
	one := func(v rune) {
		sb.WriteString(`\u`)
		for shift := 12; shift >= 0; shift -= 4 {
			sb.WriteByte(digits[(v>>shift)&15])
		}
	}
	if r > 0xFFFF {
		r -= 0x10000
		one(0xD800 + (r >> 10))
		one(0xDC00 + (r & 0x3FF))
		return
	}
	one(r)
}

// asciiLower lower-cases ASCII letters only: bytes.ToLower would rewrite
// bytes that are not UTF-8, and a secret can be any bytes.
func asciiLower(b []byte) []byte {
	out := make([]byte, len(b))
	for i, c := range b {
		out[i] = lowerASCII(c)
	}
	return out
}
