package inject

import (
	"bytes"
	"fmt"
	"slices"
)

// Pair is one credential as the injector sees it: what the agent sends and
// what the world must receive instead.
type Pair struct {
	Placeholder []byte
	Value       []byte
}

// Injector holds the compiled placeholders. It is immutable and safe for
// concurrent use; each stream gets its own Writer.
type Injector struct {
	pairs []Pair
	// byFirst lists, for each first byte, the indexes of the placeholders
	// starting with it, longest first, so the leftmost match found is the
	// longest one (DUMMY_GITHUB_ENTERPRISE before DUMMY_GITHUB).
	byFirst [256][]int
	maxLen  int
}

// MinPlaceholderLen keeps placeholders distinctive enough that ordinary
// request bytes are not rewritten by accident.
const MinPlaceholderLen = 6

// New compiles pairs. Placeholders must be distinct and at least
// MinPlaceholderLen bytes; values must not be empty. Errors name a pair by
// position and its placeholder (not secret), never its value.
func New(pairs []Pair) (*Injector, error) {
	in := &Injector{}
	seen := map[string]int{}
	for i, p := range pairs {
		if len(p.Placeholder) < MinPlaceholderLen {
			return nil, fmt.Errorf("inject: placeholder #%d %q is %d bytes; it needs at least %d so it cannot occur by accident", i+1, p.Placeholder, len(p.Placeholder), MinPlaceholderLen)
		}
		if len(p.Value) == 0 {
			return nil, fmt.Errorf("inject: placeholder #%d %q has an empty value; load the credential or remove it", i+1, p.Placeholder)
		}
		if j, dup := seen[string(p.Placeholder)]; dup {
			return nil, fmt.Errorf("inject: placeholders #%d and #%d are both %q; each credential needs its own", j+1, i+1, p.Placeholder)
		}
		seen[string(p.Placeholder)] = i
		in.pairs = append(in.pairs, Pair{Placeholder: bytes.Clone(p.Placeholder), Value: bytes.Clone(p.Value)})
		in.maxLen = max(in.maxLen, len(p.Placeholder))
		first := p.Placeholder[0]
		in.byFirst[first] = append(in.byFirst[first], i)
	}
	for b := range in.byFirst {
		slices.SortStableFunc(in.byFirst[b], func(x, y int) int {
			return len(in.pairs[y].Placeholder) - len(in.pairs[x].Placeholder)
		})
	}
	return in, nil
}

// Used says which placeholders a stream or value contained, by index into
// the pairs given to New, each listed once in ascending order.
type Used struct {
	// Injected were replaced by their value.
	Injected []int
	// Foreign were left as they are because allow refused them: the caller
	// audits them as placeholder_foreign_host.
	Foreign []int
}

// Replace returns b with every allowed placeholder replaced. It is for
// complete values such as a URL or a header field.
func (in *Injector) Replace(b []byte, allow func(i int) bool) ([]byte, Used) {
	var out bytes.Buffer
	w := in.NewWriter(&out, allow)
	// Writes into a bytes.Buffer cannot fail.
	_, _ = w.Write(b)
	_ = w.Close()
	return out.Bytes(), w.Used()
}
