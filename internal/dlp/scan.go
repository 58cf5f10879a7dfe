package dlp

import (
	"bytes"
	"io"
	"slices"
	"strings"
	"sync"
	"unsafe"
)

// Scanner finds the rules' matches in what it is given, except a match
// that overlaps one of its placeholders: the proxy's own stand-ins are
// sent by agents on purpose, and a format-preserving one looks just like
// the key it stands for. It is safe for concurrent use.
type Scanner struct {
	ignore [][]byte
}

// New is a Scanner that never reports a match overlapping one of
// placeholders.
func New(placeholders []string) *Scanner {
	s := &Scanner{}
	for _, p := range placeholders {
		if p != "" {
			s.ignore = append(s.ignore, []byte(p))
		}
	}
	return s
}

// Finding is the error a Reader in enforce mode stops with. It names the
// rule, never the value.
type Finding struct{ Rule string }

func (f *Finding) Error() string {
	return "the request carries secret-shaped data (dlp rule " + f.Rule + ")"
}

// Scan returns the name of the first rule with a match in b, or "".
func (s *Scanner) Scan(b []byte) string {
	return s.scan(b, false, true)
}

// ScanString is Scan for a string.
func (s *Scanner) ScanString(v string) string {
	// Scan only reads b, so the string's bytes serve without a copy.
	return s.Scan(unsafe.Slice(unsafe.StringData(v), len(v)))
}

// scan is Scan over a piece of a stream: a match touching the start of b
// (when cutStart) or its end (when !atEnd) is not taken, since the bytes
// beyond the cut could undo it (a word boundary, a longer run); the
// Reader's windows see each such match again away from the cut.
func (s *Scanner) scan(b []byte, cutStart, atEnd bool) string {
	name := ""
	s.each(b, cutStart, atEnd, func(r *rule, _, _ int) bool {
		name = r.name
		return false
	})
	return name
}

// Mask returns v with every match of a rule (but a placeholder) replaced
// by "[dlp:<rule>]", for a record that must say where a request went
// without keeping what it carried.
func (s *Scanner) Mask(v string) string {
	b := []byte(v)
	type span struct {
		start, end int
		name       string
	}
	var spans []span
	s.each(b, false, true, func(r *rule, start, end int) bool {
		spans = append(spans, span{start, end, r.name})
		return true
	})
	if len(spans) == 0 {
		return v
	}
	slices.SortFunc(spans, func(a, b span) int { return a.start - b.start })
	var out strings.Builder
	at := 0
	for _, sp := range spans {
		if sp.start < at {
			continue // inside one already masked
		}
		out.Write(b[at:sp.start])
		out.WriteString("[dlp:" + sp.name + "]")
		at = sp.end
	}
	out.Write(b[at:])
	return out.String()
}

// each calls fn with every match in b (see scan for cutStart and atEnd)
// until fn returns false: at each place one of a rule's starts occurs,
// the rule's expression is tried there. The starts are found in one pass
// over b, by their first two bytes (starts.go).
func (s *Scanner) each(b []byte, cutStart, atEnd bool, fn func(r *rule, start, end int) bool) {
	for p := 0; p+1 < len(b); p++ {
		slot := pairSlot[uint16(b[p])<<8|uint16(b[p+1])]
		if slot == 0 {
			continue
		}
		for _, c := range candidates[slot-1] {
			r := &rules[c.rule]
			if !hasPrefix(b[p:], c.start, r.fold) {
				continue
			}
			if p == 0 && cutStart || r.lead && p > 0 && isWord(b[p-1]) {
				continue
			}
			win := b[p:min(len(b), p+Window)]
			if r.ahead != nil && !r.ahead(win) {
				continue
			}
			m := r.re.FindSubmatchIndex(win)
			if m == nil || !atEnd && p+m[1] == len(b) {
				continue
			}
			start, end := p+m[0], p+m[1]
			if r.value > 0 {
				vs, ve := p+m[2*r.value], p+m[2*r.value+1]
				if !looksRandom(b[vs:ve]) || s.placeholderAt(b, vs, ve) {
					continue
				}
			} else if s.placeholderAt(b, start, end) {
				continue
			}
			if !fn(r, start, end) {
				return
			}
		}
	}
}

func isWord(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c == '_'
}

// placeholderAt says whether a placeholder occurs in b overlapping
// b[start:end].
func (s *Scanner) placeholderAt(b []byte, start, end int) bool {
	for _, p := range s.ignore {
		from := max(0, start-len(p)+1)
		to := min(len(b), end+len(p)-1)
		w := b[from:to]
		for off := 0; ; {
			i := bytes.Index(w[off:], p)
			if i < 0 {
				break
			}
			at := from + off + i
			if at < end && at+len(p) > start {
				return true
			}
			off += i + 1
		}
	}
	return false
}

func asciiEqualFold(b []byte, lower string) bool {
	for i := range len(lower) {
		c := b[i]
		if c >= 'A' && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != lower[i] {
			return false
		}
	}
	return true
}

// Reader passes a stream on while scanning it: it holds back the last
// Window bytes it has read until it has seen what follows them (or the
// end), so that a secret split across reads is seen whole before any of it
// is passed on. In enforce mode it stops at the first finding with a
// *Finding error, having passed on nothing of the secret; otherwise it
// notes each finding (Found) and passes everything on.
//
// Bytes still held back wait for more input: a stream that pauses waits
// up to Window bytes behind.
type Reader struct {
	src     io.Reader
	s       *Scanner
	enforce bool
	// buf holds, from the start, up to Window bytes already passed on (the
	// context a match may start in) and then the bytes held back; sent is
	// where the held bytes begin.
	buf  []byte
	sent int
	// dropped counts the bytes let go from buf's front, so buf[0] is at
	// this offset of the stream.
	dropped int64
	ready   []byte
	eof     bool
	err     error
	// found is read by Found from another goroutine than the reader's
	// (the proxy's handler, while the transport reads the body).
	found Found
}

// readSize is how much a Reader asks its source for at a time.
const readSize = 32 << 10

// NewReader scans src as it is read.
func (s *Scanner) NewReader(src io.Reader, enforce bool) *Reader {
	return &Reader{src: src, s: s, enforce: enforce}
}

// Found are the rules that matched so far, each once, in the order found.
func (r *Reader) Found() []string { return r.found.Rules() }

func (r *Reader) Read(p []byte) (int, error) {
	for len(r.ready) == 0 {
		if r.err != nil {
			return 0, r.err
		}
		if r.eof {
			return 0, io.EOF
		}
		r.fill()
	}
	n := copy(p, r.ready)
	r.ready = r.ready[n:]
	return n, nil
}

// fill reads once more from the source and, when there is something to
// pass on, scans what is held (with the context before it) and readies
// all of it but the last Window bytes.
func (r *Reader) fill() {
	if r.sent > Window {
		drop := r.sent - Window
		keep := copy(r.buf, r.buf[drop:])
		r.buf, r.sent = r.buf[:keep], Window
		r.dropped += int64(drop)
	}
	if cap(r.buf)-len(r.buf) < readSize {
		nb := make([]byte, len(r.buf), len(r.buf)+readSize+Window)
		copy(nb, r.buf)
		r.buf = nb
	}
	n, err := r.src.Read(r.buf[len(r.buf):cap(r.buf)])
	r.buf = r.buf[:len(r.buf)+n]
	switch {
	case err == io.EOF:
		r.eof = true
	case err != nil:
		r.err = err
		return
	}
	if !r.eof && len(r.buf)-r.sent <= Window {
		return
	}
	from := max(0, r.sent-Window)
	if rule := r.s.scan(r.buf[from:], r.dropped+int64(from) > 0, r.eof); rule != "" {
		r.note(rule)
		if r.enforce {
			r.err = &Finding{Rule: rule}
			return
		}
	}
	to := len(r.buf)
	if !r.eof {
		to -= Window
	}
	r.ready = r.buf[r.sent:to]
	r.sent = to
}

func (r *Reader) note(rule string) { r.found.Note(rule) }

// Found is a set of rule names in the order first noted, safe for
// concurrent use: a Reader's, and the proxy's record of a request.
type Found struct {
	mu    sync.Mutex
	rules []string
}

// Note adds rule unless it is there.
func (f *Found) Note(rule string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if !slices.Contains(f.rules, rule) {
		f.rules = append(f.rules, rule)
	}
}

// Rules are the rules noted so far.
func (f *Found) Rules() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.rules)
}

// Close closes the source, if it can be.
func (r *Reader) Close() error {
	if c, ok := r.src.(io.Closer); ok {
		return c.Close()
	}
	return nil
}
