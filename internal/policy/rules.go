package policy

import (
	"strings"

	"github.com/slapenir/slapenir/internal/hostport"
)

// ruleSet indexes host globs so that a lookup costs a few map probes per
// label of the host, however many rules there are.
type ruleSet struct {
	exact  map[string][]hostport.Glob // "api.openai.com" → its globs
	suffix map[string][]hostport.Glob // "github.com" → "*.github.com" globs
	any    []hostport.Glob            // "*" globs
}

func (r *ruleSet) add(g hostport.Glob) {
	switch {
	case g.Any:
		r.any = append(r.any, g)
	case g.Wildcard:
		if r.suffix == nil {
			r.suffix = map[string][]hostport.Glob{}
		}
		r.suffix[g.Host] = append(r.suffix[g.Host], g)
	default:
		if r.exact == nil {
			r.exact = map[string][]hostport.Glob{}
		}
		r.exact[g.Host] = append(r.exact[g.Host], g)
	}
}

// match returns the most specific glob matching a normalised host and
// port: an exact name before the longest wildcard suffix before "*".
func (r *ruleSet) match(host string, port int) (hostport.Glob, bool) {
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

func first(globs []hostport.Glob, host string, port int) (hostport.Glob, bool) {
	for _, g := range globs {
		if g.Match(host, port) {
			return g, true
		}
	}
	return hostport.Glob{}, false
}
