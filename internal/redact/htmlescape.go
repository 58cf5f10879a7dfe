package redact

import "unicode/utf8"

// htmlNamed are the named character references (HTML5) that stand for ASCII
// punctuation and white space: what HTML escapers and template engines emit
// for characters a token can contain. Names that stand for other characters
// (&tilde; is U+02DC, not '~') are not here.
var htmlNamed = map[string]byte{
	"Tab": '\t', "NewLine": '\n', "excl": '!', "quot": '"', "QUOT": '"',
	"num": '#', "dollar": '$', "percnt": '%', "amp": '&', "AMP": '&',
	"apos": '\'', "lpar": '(', "rpar": ')', "ast": '*', "midast": '*',
	"plus": '+', "comma": ',', "period": '.', "sol": '/', "colon": ':',
	"semi": ';', "lt": '<', "LT": '<', "equals": '=', "gt": '>', "GT": '>',
	"quest": '?', "commat": '@', "lsqb": '[', "lbrack": '[', "bsol": '\\',
	"rsqb": ']', "rbrack": ']', "Hat": '^', "lowbar": '_', "UnderBar": '_',
	"grave": '`', "lcub": '{', "lbrace": '{', "verbar": '|', "vert": '|',
	"rcub": '}', "rbrace": '}',
}

// htmlLegacy are the names browsers also decode without the semicolon.
var htmlLegacy = map[string]bool{"amp": true, "AMP": true, "lt": true, "LT": true, "gt": true, "GT": true, "quot": true, "QUOT": true}

const (
	// htmlMaxName is the longest name in htmlNamed.
	htmlMaxName = len("UnderBar")
	// htmlMaxDigits bounds a numeric reference's digits, leading zeros
	// included, so every hit has a bounded span; longer references are
	// taken literally.
	htmlMaxDigits = 7
	// htmlMaxEscape is the longest reference decoded: &#x0000067;.
	htmlMaxEscape = len("&#x;") + htmlMaxDigits
)

// decodeHTMLRef decodes the character reference at b[0] == '&': &#DDD;,
// &#xHHH; (x or X, the semicolon optional as browsers read it), or a name of
// htmlNamed followed by ';' (a legacy name without one too). Anything else
// is a literal '&'. Code points that are not Unicode scalar values decode to
// U+FFFD, as HTML5 says.
func decodeHTMLRef(b []byte, final bool) (decoded, int, escapeKind) {
	short := func() (decoded, int, escapeKind) { return cutShort('&', final) }
	if len(b) < 2 {
		return short()
	}
	if b[1] != '#' {
		return decodeHTMLName(b, final)
	}
	i, base := 2, rune(10)
	if i == len(b) {
		return short()
	}
	if b[i] == 'x' || b[i] == 'X' {
		i, base = i+1, 16
	}
	start := i
	var r rune
	for ; i < len(b) && i-start < htmlMaxDigits+1; i++ {
		d, ok := digitIn(b[i], base)
		if !ok {
			break
		}
		r = r*base + rune(d)
	}
	switch n := i - start; {
	case n > htmlMaxDigits:
		return one('&'), 1, literal
	case i == len(b):
		// The next byte may be another digit or the semicolon.
		return short()
	case n == 0:
		return one('&'), 1, literal
	}
	if b[i] == ';' {
		i++
	}
	if r == 0 || r > utf8.MaxRune || 0xD800 <= r && r < 0xE000 {
		r = utf8.RuneError
	}
	return runeOf(r), i, escaped
}

func decodeHTMLName(b []byte, final bool) (decoded, int, escapeKind) {
	i := 1
	for ; i < len(b) && i-1 <= htmlMaxName && isAlnum(b[i]); i++ {
	}
	name := string(b[1:i])
	switch {
	case len(name) > htmlMaxName:
		return one('&'), 1, literal
	case i == len(b) && final && htmlLegacy[name]:
		return one(htmlNamed[name]), i, escaped
	case i == len(b):
		return cutShort('&', final)
	}
	if c, ok := htmlNamed[name]; ok && b[i] == ';' {
		return one(c), i + 1, escaped
	}
	if htmlLegacy[name] {
		return one(htmlNamed[name]), i, escaped
	}
	return one('&'), 1, literal
}

func digitIn(c byte, base rune) (byte, bool) {
	if base == 10 {
		return c - '0', '0' <= c && c <= '9'
	}
	return hexDigit(c)
}

func isAlnum(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9'
}

// newHTMLView: after a '&', only '#' and the first letter of a name that
// stands for a byte of some secret can start a reference in a hit (for most
// tokens that is &lowbar; and &UnderBar; alone), so text full of &amp; and
// &nbsp; costs one lookup per '&'.
func newHTMLView(secrets [][]byte) *decodeView {
	v := newDecodeView(secrets, '&', decodeHTMLRef, htmlMaxEscape)
	starts := map[byte]bool{'#': true}
	for name, c := range htmlNamed {
		if v.inSecret[c] {
			starts[name[0]] = true
		}
	}
	for c := range v.useless {
		v.useless[c] = !starts[byte(c)]
	}
	return v
}
