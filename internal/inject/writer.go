package inject

import (
	"errors"
	"io"
	"maps"
	"net/http"
	"slices"
)

const chunkSize = 32 << 10

// Writer replaces placeholders in a stream written to it and passes the
// result to dst. Matching is leftmost-longest and never overlaps; replaced
// values are not searched again. It holds back only bytes that are a proper
// prefix of some placeholder at the end of what it has seen (so at most the
// longest placeholder's length minus one), and passes everything else on at
// once, on Write as on Flush. It is not safe for concurrent use.
type Writer struct {
	in    *Injector
	allow func(int) bool
	dst   io.Writer

	buf      []byte
	out      []byte
	injected map[int]bool
	foreign  map[int]bool
	err      error
	closed   bool
}

// NewWriter returns a Writer to dst that replaces placeholder i only when
// allow(i) is true; a nil allow allows none. Close it at the end of the
// stream; it does not close dst.
func (in *Injector) NewWriter(dst io.Writer, allow func(i int) bool) *Writer {
	return in.newWriter(dst, allow, chunkSize+in.maxLen)
}

func (in *Injector) newWriter(dst io.Writer, allow func(i int) bool, bufCap int) *Writer {
	if allow == nil {
		allow = func(int) bool { return false }
	}
	return &Writer{
		in: in, allow: allow, dst: dst,
		buf:      make([]byte, 0, min(bufCap, chunkSize+in.maxLen)),
		injected: map[int]bool{}, foreign: map[int]bool{},
	}
}

// Used reports the placeholders seen so far.
func (w *Writer) Used() Used {
	return Used{Injected: slices.Sorted(maps.Keys(w.injected)), Foreign: slices.Sorted(maps.Keys(w.foreign))}
}

var errClosed = errors.New("inject: write after Close")

// Write accepts all of p unless dst fails.
func (w *Writer) Write(p []byte) (int, error) {
	if w.closed {
		return 0, errClosed
	}
	if w.err != nil {
		return 0, w.err
	}
	n := 0
	for len(p) > 0 {
		k := min(cap(w.buf)-len(w.buf), len(p))
		w.buf = append(w.buf, p[:k]...)
		p, n = p[k:], n+k
		if err := w.process(false); err != nil {
			return n, err
		}
	}
	return n, nil
}

// Flush flushes dst when it has Flush() error or is an http.Flusher. The
// Writer itself has nothing more to pass on: Write already sent every byte
// that cannot begin a placeholder.
func (w *Writer) Flush() error {
	if w.closed {
		return errClosed
	}
	if w.err != nil {
		return w.err
	}
	switch f := w.dst.(type) {
	case interface{ Flush() error }:
		w.err = f.Flush()
	case http.Flusher:
		f.Flush()
	}
	return w.err
}

// Close passes on what is still held back and makes further writes fail. It
// does not close dst.
func (w *Writer) Close() error {
	if w.closed {
		return w.err
	}
	w.closed = true
	if w.err != nil {
		return w.err
	}
	return w.process(true)
}

// longestAt walks the trie along b and returns the longest placeholder that
// b starts with (-1 if none), its length, and whether b ended while a longer
// placeholder was still possible.
func (w *Writer) longestAt(b []byte) (best, bestLen int, open bool) {
	best, n := -1, 0
	for j := 0; ; j++ {
		node := &w.in.nodes[n]
		if node.pair >= 0 {
			best, bestLen = node.pair, j
		}
		if j == len(b) {
			return best, bestLen, len(node.next) > 0
		}
		next, ok := node.next[b[j]]
		if !ok {
			return best, bestLen, false
		}
		n = int(next)
	}
}

// process replaces and passes on buf up to the first position where a
// placeholder might begin but has not been seen whole yet.
func (w *Writer) process(final bool) error {
	buf := w.buf
	out := w.out[:0]
	last, i := 0, 0
	for i < len(buf) {
		if i+1 < len(buf) && !w.in.startsHere(buf[i], buf[i+1]) {
			i++
			continue
		}
		best, bestLen, open := w.longestAt(buf[i:])
		if open && !final {
			break // more input decides which placeholder, if any, starts here
		}
		if best < 0 {
			i++
			continue
		}
		out = append(out, buf[last:i]...)
		if w.allow(best) {
			out = append(out, w.in.pairs[best].Value...)
			w.injected[best] = true
		} else {
			out = append(out, w.in.pairs[best].Placeholder...)
			w.foreign[best] = true
		}
		i += bestLen
		last = i
	}
	var err error
	if len(out) == 0 {
		// Nothing replaced: pass the decided bytes on without copying.
		if i > 0 {
			_, err = w.dst.Write(buf[:i])
		}
	} else {
		out = append(out, buf[last:i]...)
		_, err = w.dst.Write(out)
	}
	w.out = out
	w.buf = buf[:copy(buf, buf[i:])]
	if err != nil {
		w.err = err
	}
	return err
}
