package inject

import (
	"bytes"
	"fmt"
	"unsafe"
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
	// nodes is a trie of the placeholders; nodes[0] is the root. Walking it
	// from a position finds the longest placeholder starting there
	// (DUMMY_GITHUB_ENTERPRISE over DUMMY_GITHUB) in one pass.
	nodes []trieNode
	// pairStart has a bit for every two-byte placeholder opening, so most
	// positions are rejected without touching the trie.
	pairStart [1 << 16 / 64]uint64
	maxLen    int
}

type trieNode struct {
	next map[byte]int32
	pair int // index of the placeholder ending here, or -1
}

func (in *Injector) startsHere(a, b byte) bool {
	k := uint16(a)<<8 | uint16(b)
	return in.pairStart[k>>6]&(1<<(k&63)) != 0
}

func (in *Injector) add(i int, ph []byte) {
	n := 0
	for _, c := range ph {
		next, ok := in.nodes[n].next[c]
		if !ok {
			next = int32(len(in.nodes))
			in.nodes = append(in.nodes, trieNode{next: map[byte]int32{}, pair: -1})
			in.nodes[n].next[c] = next
		}
		n = int(next)
	}
	in.nodes[n].pair = i
	k := uint16(ph[0])<<8 | uint16(ph[1])
	in.pairStart[k>>6] |= 1 << (k & 63)
}

// MinPlaceholderLen keeps placeholders distinctive enough that ordinary
// request bytes are not rewritten by accident.
const MinPlaceholderLen = 6

// New compiles pairs. Placeholders must be distinct and at least
// MinPlaceholderLen bytes; values must not be empty. Errors name a pair by
// position and its placeholder (not secret), never its value.
func New(pairs []Pair) (*Injector, error) {
	in := &Injector{nodes: []trieNode{{next: map[byte]int32{}, pair: -1}}}
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
		in.add(i, p.Placeholder)
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
	out := bytes.NewBuffer(make([]byte, 0, len(b)))
	// Sized to the input: one-shot calls (every header of every request)
	// must not pay for a streaming-sized buffer.
	w := in.newWriter(out, allow, len(b)+in.maxLen)
	// Writes into a bytes.Buffer cannot fail.
	_, _ = w.Write(b)
	_ = w.Close()
	return out.Bytes(), w.Used()
}

// ReplaceString is Replace for a string. Most values hold no placeholder:
// those come back as they are, with nothing copied or allocated.
func (in *Injector) ReplaceString(s string, allow func(i int) bool) (string, Used) {
	// The scan only reads, so it may look at the string's bytes in place.
	if !in.mayHold(unsafe.Slice(unsafe.StringData(s), len(s))) {
		return s, Used{}
	}
	b, used := in.Replace([]byte(s), allow)
	return string(b), used
}

// mayHold reports whether a placeholder could start anywhere in b.
func (in *Injector) mayHold(b []byte) bool {
	for i := 0; i+1 < len(b); i++ {
		if in.startsHere(b[i], b[i+1]) {
			return true
		}
	}
	return false
}
