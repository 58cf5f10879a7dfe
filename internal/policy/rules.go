package policy

import (
	"strings"

	"github.com/slapenir/slapenir/internal/hostport"
)

// rule is a glob with its canonical text, computed once so that a
// decision costs no allocation.
type rule struct {
	glob hostport.Glob
	text string
}

// ruleSet indexes host globs so that a lookup costs a few map probes per
// label of the host, however many rules there are.
type ruleSet struct {
	exact  map[string][]rule // "api.openai.com" → its globs
	suffix map[string][]rule // "github.com" → "*.github.com" globs
	any    []rule            // "*" globs
}

func (r *ruleSet) add(g hostport.Glob) {
	ru := rule{g, g.String()}
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
	if g, ok := first(r.exact[host], host, port); ok {
		return g, true
	}
	if r.suffix != nil {
		for rest := host; ; {
			i := strings.IndexByte(rest, '.')
			if i < 0 {
				break
			}
			rest = rest[i+1:]
			if g, ok := first(r.suffix[rest], host, port); ok {
				return g, true
			}
		}
	}
	return first(r.any, host, port)
}

func first(rules []rule, host string, port int) (string, bool) {
	for _, r := range rules {
		if r.glob.Match(host, port) {
			return r.text, true
		}
	}
	return "", false
}
