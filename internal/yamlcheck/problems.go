// Package yamlcheck is what the two YAML files SLAPENIR reads — the
// proxy's configuration (config) and init's service file (initconf) —
// share to report what is wrong with them: one problem type, one output
// format ("file:line: message", every problem at once, in line order), and
// one walk over a mapping's keys that makes unknown and repeated keys
// problems, with a suggestion for a typo.
//
// It owns the reporting and the key walk; it must not know either file's
// keys or values.
package yamlcheck

import (
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/slapenir/slapenir/internal/didyoumean"
	"go.yaml.in/yaml/v3"
)

// Problem is one thing wrong with a configuration.
type Problem struct {
	Line int // 1-based line in the file, 0 when no line applies
	Msg  string
}

// Problems is every problem found in one file, not just the first, so one
// run shows them all.
type Problems struct {
	File string
	List []Problem
}

// Error prints one problem per line as "file:line: message" ("file: message"
// when no line applies), in line order.
func (p *Problems) Error() string {
	name := p.File
	if name == "" {
		name = "config"
	}
	var b strings.Builder
	for i, pr := range p.List {
		if i > 0 {
			b.WriteByte('\n')
		}
		b.WriteString(name)
		if pr.Line > 0 {
			b.WriteByte(':')
			b.WriteString(strconv.Itoa(pr.Line))
		}
		b.WriteString(": ")
		b.WriteString(pr.Msg)
	}
	return b.String()
}

// OrNil sorts the problems by line and returns nil when there are none, so
// that callers can write "return probs.OrNil()".
func (p *Problems) OrNil() error {
	if len(p.List) == 0 {
		return nil
	}
	sort.SliceStable(p.List, func(i, j int) bool { return p.List[i].Line < p.List[j].Line })
	return p
}

// Add notes a problem at line.
func (p *Problems) Add(line int, format string, args ...any) {
	p.List = append(p.List, Problem{Line: line, Msg: fmt.Sprintf(format, args...)})
}

// Join names key inside the mapping at path ("" is the top level).
func Join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// Keys walks mapping n (found at path) and calls fn for each key of
// known, once, in the file's order; a key not in known, and a key given
// twice, is a problem instead, the first with a suggestion when it looks
// like a typo of a known one.
func Keys(probs *Problems, path string, n *yaml.Node, known []string, fn func(key string, k, v *yaml.Node)) {
	where := "at the top level"
	if path != "" {
		where = "in " + path
	}
	seen := map[string]int{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if k.Kind != yaml.ScalarNode {
			probs.Add(k.Line, "keys %s must be plain words, got %s", where, Describe(k))
			continue
		}
		key := k.Value
		if first, dup := seen[key]; dup {
			probs.Add(k.Line, "key %q %s is given twice (first on line %d)", key, where, first)
			continue
		}
		seen[key] = k.Line
		if !slices.Contains(known, key) {
			msg := fmt.Sprintf("unknown key %q", Join(path, key))
			if s := didyoumean.Suggest(key, known); s != "" {
				msg += fmt.Sprintf(" (did you mean %q?)", s)
			} else {
				msg += fmt.Sprintf(" (known keys %s: %s)", where, strings.Join(known, ", "))
			}
			probs.Add(k.Line, "%s", msg)
			continue
		}
		fn(key, k, v)
	}
}

// Describe says what the user actually wrote at n.
func Describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		return strconv.Quote(n.Value)
	}
	return "nothing"
}
