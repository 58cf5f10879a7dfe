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

// Problem is one thing wrong with a configuration: the one problem type of
// every configuration section (policy.Problem, secrets.Problem and
// config.Problem are this type). Path is the dotted path of the value
// ("policy.allow[2].host"), "" when the problem is of no one value (a YAML
// syntax error, a key the decoder refused, which its message names); Line
// is the 1-based line in the file, 0 when no line applies; Msg says what is
// wrong, without the path.
type Problem struct {
	Path string
	Line int
	Msg  string
}

// Error is the problem as one line: "path: message", or the message alone
// without a path.
func (p Problem) Error() string {
	if p.Path == "" {
		return p.Msg
	}
	return p.Path + ": " + p.Msg
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
		b.WriteString(pr.Error())
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
	Pairs(probs, path, n, func(key string, k, v *yaml.Node) {
		if slices.Contains(known, key) {
			fn(key, k, v)
			return
		}
		msg := fmt.Sprintf("unknown key %q", Join(path, key))
		if s := didyoumean.Suggest(key, known); s != "" {
			msg += fmt.Sprintf(" (did you mean %q?)", s)
		} else {
			msg += fmt.Sprintf(" (known keys %s: %s)", where(path), strings.Join(known, ", "))
		}
		probs.Add(k.Line, "%s", msg)
	})
}

// Pairs walks mapping n (found at path), whose keys are data rather than
// settings (service names, variable names), and calls fn for each in the
// file's order; a key that is not a plain word, and a key given twice, is
// a problem instead.
func Pairs(probs *Problems, path string, n *yaml.Node, fn func(key string, k, v *yaml.Node)) {
	seen := map[string]int{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if k.Kind != yaml.ScalarNode {
			probs.Add(k.Line, "keys %s must be plain words, got %s", where(path), Describe(k))
			continue
		}
		if first, dup := seen[k.Value]; dup {
			probs.Add(k.Line, "key %q %s is given twice (first on line %d)", k.Value, where(path), first)
			continue
		}
		seen[k.Value] = k.Line
		fn(k.Value, k, v)
	}
}

// where says in words where the mapping at path is.
func where(path string) string {
	if path == "" {
		return "at the top level"
	}
	return "in " + path
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
