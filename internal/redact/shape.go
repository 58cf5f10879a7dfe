package redact

import (
	"bytes"
	"unicode/utf8"
)

// What a Writer holds back at a Flush decides when the reader of its output
// gets each byte, and that reader is the agent, which does not hold the
// secrets. Holding back "exactly what could still grow into a hit" made
// the timing an oracle: an agent echoing a guess through any streaming
// upstream learned, from whether the guess arrived at once, whether it was
// a prefix of a real credential, and recovered a 20-character key
// character by character. So the hold-back depends only on public facts
// about the secrets — their lengths, the coarse classes of bytes they are
// made of, the encodings enabled — and on the buffered bytes as text,
// never on whether those bytes match a secret: a Flush holds back the
// trailing run of bytes that could belong to the encoded form of *some*
// string of that shape, up to one window. Two Redactors for different
// secrets of the same shape therefore release every stream that holds
// neither secret at the same points.

// Byte classes. A secret's shape names the classes its bytes fall in; a
// class joins the shape whole, so which bytes of a class a secret uses is
// not revealed. Printable ASCII is always in: every encoding of every
// secret is made of it (hex, base64, escapes), so it reveals nothing, and
// two random tokens of one alphabet (base64 with or without a '+') look
// the same.
var classLineBreak = alphabet("\n\r")

func printable(c byte) bool { return 0x21 <= c && c <= 0x7e }

// heldSet returns the bytes a Flush holds back at the end of the buffered
// input: every byte that can occur in some encoded form (of enc) of some
// string whose bytes are in the classes secrets use. Line breaks are never
// among them: no form searched for holds one literally (splitLines).
//
// Non-ASCII is two classes: Latin-1 (U+0080–U+00FF, and bytes that are
// not UTF-8, which stand for Latin-1 code points) and beyond. Under UTF-16
// a character beyond Latin-1 is a code unit whose bytes can be anything,
// so whether a secret has one is part of its public shape: it makes every
// byte holdable, where Latin-1 adds only the zero byte.
func heldSet(secrets [][]byte, enc Encoding) *[256]bool {
	var set [256]bool
	for c := 0x21; c <= 0x7e; c++ {
		set[c] = true
	}
	var other, high, beyondLatin1 bool
	for _, s := range secrets {
		for b := s; len(b) > 0; {
			// A byte that is not UTF-8 stands for its Latin-1 code point;
			// an encoded U+FFFD is a character beyond Latin-1 like any.
			r, size := utf8.DecodeRune(b)
			beyondLatin1 = beyondLatin1 || r > 0xff && size > 1
			b = b[size:]
		}
		for _, c := range s {
			switch {
			case printable(c), classLineBreak[c]:
			case c == ' ':
				set[' '] = true
			case c == '\t':
				set['\t'] = true
			case c >= 0x80:
				high = true
			default:
				other = true
			}
		}
	}
	for c := range set {
		switch b := byte(c); {
		case high && b >= 0x80:
			set[c] = true
		case other && !printable(b) && b < 0x80 && !classLineBreak[b] && b != ' ' && b != '\t':
			set[c] = true
		}
	}
	if enc&UTF16 != 0 {
		// Every Latin-1 character is a zero byte beside its own; one
		// beyond is a code unit whose bytes can be anything.
		set[0] = true
		if beyondLatin1 {
			for c := range set {
				set[c] = true
			}
		}
	}
	return &set
}

// publicSpan is the widest hit any secret of n bytes can have under enc,
// from its length alone, so that the window (how much a Write keeps back,
// and the most a Flush does) reveals the length and nothing else: the
// actual widest form depends on the bytes (how many need a percent escape,
// how many runes a UTF-16 form has).
func publicSpan(n int, enc Encoding) int {
	if n == 0 {
		return 0
	}
	span := 0
	widen := func(e Encoding, w int) {
		if enc&e != 0 {
			span = max(span, w)
		}
	}
	widen(Raw, n)
	// A byte that is not UTF-8 is one code unit, two bytes.
	widen(UTF16, 2*n)
	widen(Hex, 2*n)
	// At most 8n/6+1 characters depend on the secret alone; "%2B" for
	// '+' triples each; one character before, one and "==" after.
	widen(Base64, 3*(8*n/6+1)+1+tailExt)
	widen(Percent, n*len("%67"))
	widen(JSON, n*len(`\u0067`))
	widen(HTML, n*htmlMaxEscape)
	return span
}

// printableForms are the encodings whose forms of any secret are printable
// ASCII (and the secret's own non-ASCII bytes, in JSON's minimal escaping):
// a line break in the secret is escaped in them, never literal.
const printableForms = Base64 | Hex | Percent | JSON

// splitLines sorts secrets for the shape: lines holds the secrets without a
// line break, searched for in every form, and each line of those with one;
// multiline holds the latter whole, searched for only in printableForms.
//
// A literal line break in a searched form would put line breaks in the held
// set, and a Flush after every SSE event or NDJSON line would then keep it
// back (a PEM key in the vault would stall every stream by a window of
// ~19 KB). Searched for line by line, a multi-line secret is still redacted
// wherever it appears raw — each line becomes a replacement — and whole
// wherever it is encoded (base64 of a key file, a JSON string holding it).
// Lines shorter than MinSecretLen are not searched for on their own: they
// would mangle ordinary text (a PEM's short last line, a JSON key file's
// braces), and neither is a PEM armor line, the same in every key. Where the
// line breaks fall is part of the public shape.
func splitLines(secrets [][]byte) (lines, multiline [][]byte) {
	for _, s := range secrets {
		if !bytes.ContainsAny(s, "\r\n") {
			lines = append(lines, s)
			continue
		}
		multiline = append(multiline, s)
		for _, line := range bytes.FieldsFunc(s, func(r rune) bool { return r == '\n' || r == '\r' }) {
			if len(line) >= MinSecretLen && !pemArmor(line) {
				lines = append(lines, line)
			}
		}
	}
	return lines, multiline
}

// pemArmor reports whether line is a PEM boundary ("-----BEGIN PRIVATE
// KEY-----"): searched for, it would redact every mention of the format.
func pemArmor(line []byte) bool {
	return bytes.HasSuffix(line, []byte("-----")) &&
		(bytes.HasPrefix(line, []byte("-----BEGIN ")) || bytes.HasPrefix(line, []byte("-----END ")))
}
