package config

import (
	"sort"
	"strconv"
	"strings"
)

// Problem is one thing wrong with a configuration.
type Problem struct {
	Line int // 1-based line in the file, 0 when no line applies
	Msg  string
}

// Problems is the error returned by Load, Parse and Validate: every problem
// found, not just the first, so one run of check-config shows them all.
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

// orNil sorts the problems by line and returns nil when there are none, so
// that callers can write "return probs.orNil()".
func (p *Problems) orNil() error {
	if len(p.List) == 0 {
		return nil
	}
	sort.SliceStable(p.List, func(i, j int) bool { return p.List[i].Line < p.List[j].Line })
	return p
}
