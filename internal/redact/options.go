package redact

// Encoding is a set of wire forms a secret is searched for in. The zero value
// means every form.
type Encoding uint8

const (
	// Raw is the secret's bytes as they are, in any ASCII letter case.
	Raw Encoding = 1 << iota
	// Base64 is standard and URL-safe base64, padded or not, with the secret
	// starting at any of the three byte offsets of a base64 group (so it is
	// found inside a longer encoded blob such as a Basic credential or a JWT).
	Base64
	// Hex is hexadecimal, digits in any case.
	Hex
	// Percent is URL percent-encoding: every byte as %XX (upper or lower hex)
	// and the usual escapers' forms that encode only reserved characters.
	Percent
	// JSON is a JSON string body: minimal escaping, HTML-safe escaping,
	// escaped solidus, every character as \uXXXX, and non-ASCII-only \uXXXX.
	JSON

	// HTML is HTML character references mixed freely with literal
	// characters: decimal (&#103;), hexadecimal (&#x67;, &#X67;), with or
	// without leading zeros, and the named references of ASCII punctuation
	// (&lowbar;, &period;, &amp; …).
	HTML
	// UTF16 is the secret in UTF-16, little- and big-endian, in any ASCII
	// letter case.
	UTF16

	// AllEncodings is every form above.
	AllEncodings = Raw | Base64 | Hex | Percent | JSON | HTML | UTF16
)

// DefaultReplacement is what every hit becomes unless Options says otherwise.
const DefaultReplacement = "[REDACTED]"

// MinSecretLen is the shortest secret New accepts: shorter strings (and their
// hex or base64 forms) occur in ordinary text often enough that redacting
// them would corrupt responses.
const MinSecretLen = 8

// Options tunes a Redactor. The zero value is the documented default.
type Options struct {
	// Replacement is written once in place of each redacted span. Empty
	// means DefaultReplacement.
	Replacement string
	// Encodings selects the wire forms searched for. Zero means AllEncodings.
	Encodings Encoding
}

func (o Options) replacement() []byte {
	if o.Replacement == "" {
		return []byte(DefaultReplacement)
	}
	return []byte(o.Replacement)
}

func (o Options) encodings() Encoding {
	if o.Encodings == 0 {
		return AllEncodings
	}
	return o.Encodings
}
