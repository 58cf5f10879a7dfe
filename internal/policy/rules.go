package policy

import (
	"strings"
	"unicode/utf8"

	"github.com/slapenir/slapenir/internal/hostport"
)

// rule is a glob with its canonical text, computed once so that a
// decision costs no allocation, and the methods and path patterns a
// narrowed rule is limited to (none: any).
type rule struct {
	glob      hostport.Glob
	text      string
	methods   []string
	paths     [][]string // patterns, split into segments
	foldPaths bool       // case_insensitive_paths
}

func (r *rule) narrowed() bool { return len(r.methods)+len(r.paths) > 0 }

// methodOK matches a request's method against the rule's. A deny rule
// compares without case: an upstream that reads "delete" as DELETE must
// not receive it past a rule denying DELETE. An allow rule compares
// exactly, because an upstream may read "get" as something other than GET
// (a handler that treats every method but "GET" as a write): not matching
// is the safe failure there. A deny of GET also denies HEAD, because Go's
// ServeMux and most frameworks answer HEAD by running the GET handler (and
// the headers alone, Content-Length or an ETag, can tell what GET would
// return). Methods in a rule are upper case (Validate).
func (r *rule) methodOK(method string, deny bool) bool {
	if len(r.methods) == 0 {
		return true
	}
	for _, m := range r.methods {
		if m == method {
			return true
		}
		if deny && (strings.EqualFold(m, method) || m == "GET" && strings.EqualFold(method, "HEAD")) {
			return true
		}
	}
	return false
}

// pathOK matches a request path, as split by splitPath, against the rule's
// patterns. A path splitPath could not judge matches a deny rule and no
// allow rule: either way the rule fails closed. A deny rule also matches
// with a trailing "/" ignored on both sides, because nginx, Express
// without strict routing and Spring before 6 serve "/admin/" as "/admin"
// (and Express "/admin" as "/admin/"); an allow rule matches exactly.
func (r *rule) pathOK(p reqPath, deny bool) bool {
	if len(r.paths) == 0 {
		return true
	}
	if !p.judged {
		return deny
	}
	for _, pat := range r.paths {
		if matchSegments(pat, p.segs, r.foldPaths) ||
			deny && matchSegments(trimTrailingSlash(pat), trimTrailingSlash(p.segs), r.foldPaths) {
			return true
		}
	}
	return false
}

// trimTrailingSlash drops the empty last segment a trailing "/" makes,
// except from "/" itself (one empty segment), which would otherwise
// become no path at all.
func trimTrailingSlash(segs []string) []string {
	if n := len(segs); n > 1 && segs[n-1] == "" {
		return segs[:n-1]
	}
	return segs
}

// reqPath is a request path split into decoded segments once per decision,
// or judged=false when no segment list can stand for what an upstream
// would make of it.
type reqPath struct {
	segs   []string
	judged bool
}

// splitPath splits the path a request sends upstream, still
// percent-encoded as on the wire, into decoded segments, appending to buf
// (a caller's array, so that a plain path costs no allocation). It refuses
// to judge (judged=false) any path that upstreams read in more than one
// way: one that does not start with "/"; a dot segment (".", "..", or
// only dots), which servers resolve; an empty segment ("//a", "/a//b"),
// which servers merge; a backslash, which some servers take for "/"; a
// ";", which some servers strip with what follows up to the next "/"; a
// control character or invalid UTF-8 (overlong encodings of "." and "/");
// a malformed escape; and an encoded ".", "/", "\", ";" or "%", which a
// server may decode before or after it resolves, splits or decodes again.
// Any other escape is decoded, as the upstream will ("/%61dmin" is
// "/admin"). An empty path is "/", as sent.
func splitPath(path string, buf []string) reqPath {
	if path == "" {
		path = "/"
	}
	if path[0] != '/' {
		return reqPath{}
	}
	if strings.IndexByte(path, '%') >= 0 {
		var ok bool
		if path, ok = unescapePath(path); !ok {
			return reqPath{}
		}
	}
	if !utf8.ValidString(path) {
		return reqPath{}
	}
	for i := 0; i < len(path); i++ {
		if c := path[i]; c < 0x20 || c == 0x7f || c == '\\' || c == ';' {
			return reqPath{}
		}
	}
	segs := buf
	for rest := path[1:]; ; {
		seg, after, more := strings.Cut(rest, "/")
		if seg == "" && more || seg != "" && strings.Trim(seg, ".") == "" {
			return reqPath{}
		}
		segs = append(segs, seg)
		if !more {
			break
		}
		rest = after
	}
	return reqPath{segs: segs, judged: true}
}

// unescapePath decodes path's escapes, refusing a malformed one and one
// that encodes a character splitPath must see as it was sent.
func unescapePath(path string) (string, bool) {
	var b strings.Builder
	b.Grow(len(path))
	for i := 0; i < len(path); i++ {
		if path[i] != '%' {
			b.WriteByte(path[i])
			continue
		}
		if i+2 >= len(path) || !isHex(path[i+1]) || !isHex(path[i+2]) {
			return "", false
		}
		c := unhex(path[i+1])<<4 | unhex(path[i+2])
		switch c {
		case '.', '/', '\\', ';', '%':
			return "", false
		}
		b.WriteByte(c)
		i += 2
	}
	return b.String(), true
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

func unhex(c byte) byte {
	switch {
	case c <= '9':
		return c - '0'
	case c <= 'F':
		return c - 'A' + 10
	}
	return c - 'a' + 10
}

// matchSegments: "*" is one segment, "**" any number of them; fold
// compares literal segments without case.
func matchSegments(pat, segs []string, fold bool) bool {
	for len(pat) > 0 {
		if pat[0] == "**" {
			for k := 0; k <= len(segs); k++ {
				if matchSegments(pat[1:], segs[k:], fold) {
					return true
				}
			}
			return false
		}
		if len(segs) == 0 || pat[0] != "*" && pat[0] != segs[0] && !(fold && strings.EqualFold(pat[0], segs[0])) {
			return false
		}
		pat, segs = pat[1:], segs[1:]
	}
	return len(segs) == 0
}

// ruleSet indexes host globs so that a lookup costs a few map probes per
// label of the host, however many rules there are.
type ruleSet struct {
	exact  map[string][]rule // "api.openai.com" → its globs
	suffix map[string][]rule // "github.com" → "*.github.com" globs
	any    []rule            // "*" globs
}

func (r *ruleSet) add(g hostport.Glob) { r.addRule(rule{glob: g, text: g.String()}) }

func (r *ruleSet) addRule(ru rule) {
	g := ru.glob
	switch {
	case g.Any:
		r.any = append(r.any, ru)
	case g.Wildcard:
		if r.suffix == nil {
			r.suffix = map[string][]rule{}
		}
		r.suffix[g.Host] = append(r.suffix[g.Host], ru)
	default:
		if r.exact == nil {
			r.exact = map[string][]rule{}
		}
		r.exact[g.Host] = append(r.exact[g.Host], ru)
	}
}

// match returns the text of the most specific glob matching a normalised
// host and port: an exact name before the longest wildcard suffix before
// "*".
func (r *ruleSet) match(host string, port int) (string, bool) {
	text, ok := "", false
	r.each(host, port, func(ru *rule) bool {
		text, ok = ru.text, true
		return false
	})
	return text, ok
}

// each calls f with every rule matching host and port, most specific
// first (as match orders them), until f returns false.
func (r *ruleSet) each(host string, port int, f func(*rule) bool) {
	visit := func(rules []rule) bool {
		for i := range rules {
			if rules[i].glob.Match(host, port) && !f(&rules[i]) {
				return false
			}
		}
		return true
	}
	if !visit(r.exact[host]) {
		return
	}
	if r.suffix != nil {
		for rest := host; ; {
			i := strings.IndexByte(rest, '.')
			if i < 0 {
				break
			}
			rest = rest[i+1:]
			if !visit(r.suffix[rest]) {
				return
			}
		}
	}
	visit(r.any)
}
