package secrets

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"sort"
	"strings"
)

// DefaultPlaceholder is the placeholder of a credential without one
// configured: DUMMY_ and the name in upper case, "-" written as "_".
func DefaultPlaceholder(name string) string {
	return "DUMMY_" + strings.ToUpper(strings.ReplaceAll(name, "-", "_"))
}

// knownPrefixes are the fixed openings of common token formats, which a
// format-preserving placeholder keeps so that SDKs checking a token's shape
// accept it. Longest first, so "sk-ant-" wins over "sk-".
var knownPrefixes = func() []string {
	p := []string{
		"github_pat_", "ghp_", "gho_", "ghu_", "ghs_", "ghr_", // GitHub
		"sk-ant-api03-", "sk-ant-", "sk-proj-", "sk-", // Anthropic, OpenAI
		"xoxb-", "xoxp-", "xoxa-", "xapp-", // Slack
		"AKIA", "ASIA", // AWS access key ids
		"glpat-", "hf_", "npm_", // GitLab, Hugging Face, npm
	}
	sort.SliceStable(p, func(i, j int) bool { return len(p[i]) > len(p[j]) })
	return p
}()

// minRandomChars is the least number of generated characters in a
// format-preserving placeholder: fewer could occur in ordinary traffic or be
// guessed.
const minRandomChars = 8

const (
	lowerChars = "abcdefghijklmnopqrstuvwxyz"
	upperChars = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
	digitChars = "0123456789"
)

var errTooShortForShape = errors.New("format_preserving needs at least 8 letters or digits after the token's prefix; use the default placeholder instead")

// shapedPlaceholder builds a placeholder that looks like value: the same
// known prefix, the same length, other characters (separators such as "-"
// and "_") kept in place, and letters and digits drawn from the classes
// (lower, upper, digit) that occur in the value. It reveals the value's
// prefix, length, separator positions and classes, nothing more.
//
// The characters come from HMAC-SHA256(key, name, attempt): the same key
// gives the same placeholder on every start, and a different attempt gives
// another one when the first collides with something.
func shapedPlaceholder(key []byte, name string, value []byte, attempt uint32) ([]byte, error) {
	prefix := ""
	for _, p := range knownPrefixes {
		if bytes.HasPrefix(value, []byte(p)) {
			prefix = p
			break
		}
	}
	rest := value[len(prefix):]
	var alphabet string
	var random int
	var hasLower, hasUpper, hasDigit bool
	for _, c := range rest {
		switch {
		case c >= 'a' && c <= 'z':
			hasLower = true
		case c >= 'A' && c <= 'Z':
			hasUpper = true
		case c >= '0' && c <= '9':
			hasDigit = true
		default:
			continue
		}
		random++
	}
	if random < minRandomChars {
		return nil, errTooShortForShape
	}
	if hasLower {
		alphabet += lowerChars
	}
	if hasUpper {
		alphabet += upperChars
	}
	if hasDigit {
		alphabet += digitChars
	}
	src := newByteStream(key, name, attempt)
	out := make([]byte, len(value))
	copy(out, prefix)
	for i, c := range rest {
		if isAlnum(c) {
			out[len(prefix)+i] = src.pick(alphabet)
		} else {
			out[len(prefix)+i] = c
		}
	}
	return out, nil
}

func isAlnum(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
}

// byteStream is HMAC-SHA256 in counter mode: a deterministic, unpredictable
// byte source for a given key and label.
type byteStream struct {
	key   []byte
	label []byte
	ctr   uint32
	buf   []byte
}

func newByteStream(key []byte, name string, attempt uint32) *byteStream {
	label := []byte("slapenir placeholder v1\x00" + name + "\x00")
	label = binary.BigEndian.AppendUint32(label, attempt)
	return &byteStream{key: key, label: label}
}

func (s *byteStream) byte() byte {
	if len(s.buf) == 0 {
		m := hmac.New(sha256.New, s.key)
		m.Write(s.label)
		m.Write(binary.BigEndian.AppendUint32(nil, s.ctr))
		s.ctr++
		s.buf = m.Sum(nil)
	}
	b := s.buf[0]
	s.buf = s.buf[1:]
	return b
}

// pick draws uniformly from alphabet (rejection sampling: no modulo bias).
func (s *byteStream) pick(alphabet string) byte {
	limit := 256 - 256%len(alphabet)
	for {
		if b := int(s.byte()); b < limit {
			return alphabet[b%len(alphabet)]
		}
	}
}
