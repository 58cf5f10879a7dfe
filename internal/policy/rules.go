package policy

import (
	"slices"
	"strings"

	"github.com/slapenir/slapenir/internal/hostport"
)

// rule is a glob with its canonical text, computed once so that a
// decision costs no allocation, and the methods and path patterns a
// narrowed rule is limited to (none: any).
type rule struct {
	glob    hostport.Glob
	text    string
	methods []string
	paths   [][]string // patterns, split into segments
}

func (r *rule) narrowed() bool { return len(r.methods)+len(r.paths) > 0 }

func (r *rule) methodOK(method string) bool {
	return len(r.methods) == 0 || slices.Contains(r.methods, method)
}

// pathOK matches a path against the rule's patterns. A path with dot
// segments or empty segments ("/a/../b", "//b") never matches one: the
// upstream may resolve it to somewhere the pattern does not cover.
func (r *rule) pathOK(path string) bool {
	if len(r.paths) == 0 {
		return true
	}
	if !strings.HasPrefix(path, "/") {
		return false
	}
	// Split without allocating for up to 32 segments.
	var buf [32]string
	segs := buf[:0]
	for rest := path[1:]; ; {
		seg, after, more := strings.Cut(rest, "/")
		if seg == "." || seg == ".." || seg == "" && more {
			return false
		}
		segs = append(segs, seg)
		if !more {
			break
		}
		rest = after
	}
	for _, p := range r.paths {
		if matchSegments(p, segs) {
			return true
		}
	}
	return false
}

// matchSegments: "*" is one segment, "**" any number of them.
func matchSegments(pat, segs []string) bool {
	for len(pat) > 0 {
		if pat[0] == "**" {
			for k := 0; k <= len(segs); k++ {
				if matchSegments(pat[1:], segs[k:]) {
					return true
				}
			}
			return false
		}
		if len(segs) == 0 || pat[0] != "*" && pat[0] != segs[0] {
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
