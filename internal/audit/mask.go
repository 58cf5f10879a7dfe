package audit

import (
	"net/url"
	"strings"
)

// Masked replaces every value MaskPath hides.
const Masked = "***"

// querySeparators end one key=value segment. Besides '&', ';' is a separator
// for some servers, and '?'/'#' start a query or fragment that may carry tokens
// too (OAuth puts access_token in the fragment). Masking too much is harmless;
// splitting too little would leak.
const querySeparators = "&;?#"

// MaskPath returns pathAndQuery with the value of every sensitive-looking query
// key (token, key, secret, password, sig, code, … anywhere in the key's words,
// case-insensitive, percent-decoded: access_token, X-Amz-Signature, apiKey)
// replaced by "***", and the password of a URL's userinfo masked. Keys,
// separators, order and everything else are kept byte for byte. It never fails:
// input that does not parse is masked as well as it can be.
//
// Secrets in the path itself (/bot<token>/…) cannot be told from ordinary path
// segments and are kept.
func MaskPath(pathAndQuery string) string {
	qs := strings.IndexAny(pathAndQuery, "?#")
	head, rest := pathAndQuery, ""
	if qs >= 0 {
		head, rest = pathAndQuery[:qs], pathAndQuery[qs:]
	}
	head = maskUserinfo(head)
	if rest == "" {
		return head
	}
	var b strings.Builder
	b.Grow(len(pathAndQuery))
	b.WriteString(head)
	for rest != "" {
		// rest starts with a separator; the segment runs to the next one.
		b.WriteByte(rest[0])
		rest = rest[1:]
		end := strings.IndexAny(rest, querySeparators)
		if end < 0 {
			end = len(rest)
		}
		b.WriteString(maskSegment(rest[:end]))
		rest = rest[end:]
	}
	return b.String()
}

// maskSegment masks the value of one key=value query segment when the key is
// sensitive; a segment without '=' has no value to hide.
func maskSegment(seg string) string {
	key, _, hasValue := strings.Cut(seg, "=")
	if !hasValue || !sensitiveKey(key) {
		return seg
	}
	return key + "=" + Masked
}

// maskUserinfo masks the password in scheme://user:password@host, and the whole
// userinfo when it is a single word (https://<token>@github.com).
func maskUserinfo(s string) string {
	i := strings.Index(s, "://")
	if i < 0 {
		return s
	}
	authStart := i + len("://")
	authEnd := strings.IndexByte(s[authStart:], '/')
	if authEnd < 0 {
		authEnd = len(s)
	} else {
		authEnd += authStart
	}
	at := strings.LastIndexByte(s[authStart:authEnd], '@')
	if at < 0 {
		return s
	}
	at += authStart
	userinfo := s[authStart:at]
	if user, _, hasPass := strings.Cut(userinfo, ":"); hasPass {
		userinfo = user + ":" + Masked
	} else {
		userinfo = Masked
	}
	return s[:authStart] + userinfo + s[at:]
}

// sensitiveWords are query key words whose value is masked when they appear as
// a whole word of the key (api_key, X-Auth, code).
var sensitiveWords = map[string]bool{
	"key": true, "sig": true, "pwd": true, "pass": true, "passphrase": true,
	"auth": true, "authorization": true, "code": true, "session": true,
	"sid": true, "jwt": true, "bearer": true, "otp": true, "pin": true,
	"cookie": true, "ticket": true, "assertion": true, "hmac": true,
	"cred": true, "creds": true,
}

// sensitiveParts mask a value wherever they appear in the key with its
// separators removed (accesstoken, clientSecret, X-Amz-Signature, PHPSESSID).
var sensitiveParts = []string{
	"token", "secret", "password", "passwd", "apikey", "signature",
	"credential", "privatekey", "accesskey", "sessionid", "sessid",
	"authcode", "samlresponse",
}

// sensitiveKey reports whether the value of query key k may be a secret. It
// runs for every query key the proxy sees, so it avoids allocating: words are
// runs of ASCII letters and digits (and of non-ASCII bytes), lowercased into a
// stack buffer.
func sensitiveKey(k string) bool {
	if strings.ContainsAny(k, "%+") {
		if d, err := url.QueryUnescape(k); err == nil {
			k = d
		}
	}
	var buf [64]byte
	compact := buf[:0] // the key's words, lowercased, without separators
	wordStart := 0
	for i := 0; i <= len(k); i++ {
		if i < len(k) && isWordByte(k[i]) {
			compact = append(compact, toLowerASCII(k[i]))
			continue
		}
		if len(compact) > wordStart && sensitiveWords[string(compact[wordStart:])] {
			return true
		}
		wordStart = len(compact)
	}
	for _, p := range sensitiveParts {
		if strings.Contains(string(compact), p) {
			return true
		}
	}
	return false
}

func isWordByte(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c >= 0x80
}

func toLowerASCII(c byte) byte {
	if 'A' <= c && c <= 'Z' {
		return c + 'a' - 'A'
	}
	return c
}
