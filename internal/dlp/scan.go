package dlp

import (
	"bytes"
	"io"
	"strings"
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

// scan is Scan over a piece of a stream: a match touching the start of b
// (when cutStart) or its end (when !atEnd) is not taken, since the bytes
// beyond the cut could undo it (a word boundary, a longer run); the
// Reader's windows see each such match again away from the cut.
func (s *Scanner) scan(b []byte, cutStart, atEnd bool) string {
	for i := range rules {
		r := &rules[i]
		if !r.anchored(b) {
			continue
		}
		for _, m := range r.re.FindAllSubmatchIndex(b, -1) {
			if cutStart && m[0] == 0 || !atEnd && m[1] == len(b) {
				continue
			}
			start, end := m[0], m[1]
			if r.value > 0 {
				start, end = m[2*r.value], m[2*r.value+1]
				if !looksRandom(b[start:end]) {
					continue
				}
			}
			if !s.placeholderAt(b, start, end) {
				return r.name
			}
		}
	}
	return ""
}

// ScanString is Scan for a string.
func (s *Scanner) ScanString(v string) string {
	for i := range rules {
		if rules[i].anchoredString(v) {
			return s.Scan([]byte(v))
		}
	}
	return ""
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

func (r *rule) anchored(b []byte) bool {
	for _, a := range r.anchors {
		if r.fold && containsFold(b, a) || !r.fold && bytes.Contains(b, []byte(a)) {
			return true
		}
	}
	return len(r.anchors) == 0
}

func (r *rule) anchoredString(v string) bool {
	for _, a := range r.anchors {
		if r.fold && containsFold([]byte(v), a) || !r.fold && strings.Contains(v, a) {
			return true
		}
	}
	return len(r.anchors) == 0
}

// containsFold reports whether b contains the lower-case ASCII word w in
// any case, without allocating.
func containsFold(b []byte, w string) bool {
	first := w[0]
	upper := first - 'a' + 'A'
	for i := 0; i+len(w) <= len(b); {
		j := indexEither(b[i:len(b)-len(w)+1], first, upper)
		if j < 0 {
			return false
		}
		i += j
		if asciiEqualFold(b[i:i+len(w)], w) {
			return true
		}
		i++
	}
	return false
}

func indexEither(b []byte, x, y byte) int {
	i, j := bytes.IndexByte(b, x), bytes.IndexByte(b, y)
	switch {
	case i < 0:
		return j
	case j < 0 || i < j:
		return i
	}
	return j
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
	found   []string
}

// readSize is how much a Reader asks its source for at a time.
const readSize = 32 << 10

// NewReader scans src as it is read.
func (s *Scanner) NewReader(src io.Reader, enforce bool) *Reader {
	return &Reader{src: src, s: s, enforce: enforce}
}

// Found are the rules that matched so far, each once, in the order found.
func (r *Reader) Found() []string { return r.found }

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

func (r *Reader) note(rule string) {
	for _, f := range r.found {
		if f == rule {
			return
		}
	}
	r.found = append(r.found, rule)
}

// Close closes the source, if it can be.
func (r *Reader) Close() error {
	if c, ok := r.src.(io.Closer); ok {
		return c.Close()
	}
	return nil
}
