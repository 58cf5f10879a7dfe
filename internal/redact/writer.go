package redact

import (
	"cmp"
	"errors"
	"io"
	"net/http"
	"slices"
)

// chunkSize bounds how much new input is scanned at a time, so a Writer's
// memory is chunkSize plus one window no matter how large a Write is.
const chunkSize = 32 << 10

// Writer redacts a stream written to it and passes the result to dst. A
// Write passes on every byte followed by at least Window()-1 more, by which
// point every hit that could cover it has been seen whole, so it keeps back
// at most Window()-1 bytes; Flush passes on more (see Flush); Close passes
// on the rest. It is not safe for concurrent use.
type Writer struct {
	m     *matcher
	views []*decodeView
	repl  []byte
	held  *[256]bool
	dst   io.Writer

	// All positions are offsets in the input stream.
	buf     []byte // input not yet passed on; buf[0] is at base
	base    int64
	scanned int64  // input before this has been searched
	pending int64  // start of the earliest hit whose extent is still open
	regions []span // hits found but not yet passed on
	covered int64  // a replacement has been written for input before this

	out    []byte // scratch for assembling output around replacements
	count  int
	err    error
	closed bool
}

type span struct{ start, end int64 }

// NewWriter returns a Writer that writes the redacted stream to dst. Close
// it at the end of the stream; it does not close dst.
func (r *Redactor) NewWriter(dst io.Writer) *Writer {
	return r.newWriter(dst, chunkSize+r.m.maxSpan)
}

// newWriter is NewWriter with a smaller buffer for one-shot inputs.
func (r *Redactor) newWriter(dst io.Writer, bufCap int) *Writer {
	return &Writer{
		m:     r.m,
		views: r.views,
		repl:  r.replacement,
		held:  r.held,
		dst:   dst,
		buf:   make([]byte, 0, min(bufCap, chunkSize+r.m.maxSpan)),
	}
}

// reset readies w for a new stream to dst, keeping its buffers.
func (w *Writer) reset(dst io.Writer) {
	*w = Writer{m: w.m, views: w.views, repl: w.repl, held: w.held, dst: dst,
		buf: w.buf[:0], regions: w.regions[:0], out: w.out[:0]}
}

// Count is the number of replacements written so far: adjacent or
// overlapping hits that are passed on as one replacement count once.
func (w *Writer) Count() int { return w.count }

var errClosed = errors.New("redact: write after Close")

// Write accepts all of p unless dst fails; the bytes it cannot yet decide on
// stay buffered.
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

// Flush passes on every buffered byte except the trailing run that could
// be the start of an encoded secret of the Redactor's shape (shape.go), at
// most Window()-1 bytes, then flushes dst if it has a Flush method. Which
// bytes it keeps back depends on the bytes as text and on public facts
// about the secrets (their lengths and byte classes, the encodings), never
// on whether the bytes match a secret, so when the reader gets its bytes
// tells it nothing about a secret it does not hold. Typically that is
// nothing after a line break (an SSE event or NDJSON line goes out whole),
// or the last word. A complete hit whose base64 padding is not yet known is
// kept back too; only a stream that holds a secret has one. Flush never
// emits a byte that more input could turn into a secret: every encoded
// form is made of the held bytes and is shorter than the window.
func (w *Writer) Flush() error {
	if w.closed {
		return errClosed
	}
	if w.err != nil {
		return w.err
	}
	end := w.base + int64(len(w.buf))
	lo := max(w.base, end-int64(w.m.maxSpan)+1)
	hold := end
	for hold > lo && w.held[w.buf[hold-1-w.base]] {
		hold--
	}
	hold = min(hold, w.pending)
	if err := w.emit(hold); err != nil {
		return err
	}
	switch f := w.dst.(type) {
	case interface{ Flush() error }:
		w.err = f.Flush()
	case http.Flusher:
		f.Flush()
	}
	return w.err
}

// Close passes on everything still buffered, redacted, and makes further
// writes fail. It does not close dst.
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

// process searches the input not searched yet (plus the overlap a hit
// crossing the previous end needs) and passes on what is decided.
func (w *Writer) process(final bool) error {
	end := w.base + int64(len(w.buf))
	from := max(w.base, w.scanned-int64(w.m.maxSpan))
	hit := func(s, e int) {
		w.regions = append(w.regions, span{w.base + int64(s), w.base + int64(e)})
	}
	p := w.m.find(w.buf, int(from-w.base), final, hit)
	for _, v := range w.views {
		v.find(w.buf, int(from-w.base), final, hit)
	}
	w.pending = w.base + int64(p)
	w.scanned = end
	safe := end
	if !final {
		// A hit that covers byte j ends at most maxSpan bytes after it;
		// once that much input follows j, every such hit has been found.
		safe = min(end-int64(w.m.maxSpan)+1, w.pending)
	}
	return w.emit(safe)
}

// emit passes on input before safe: raw bytes outside hits, one replacement
// for each run of overlapping hits.
func (w *Writer) emit(safe int64) error {
	if safe <= w.base {
		return nil
	}
	n := int(safe - w.base)
	var err error
	if len(w.regions) == 0 && w.covered <= w.base {
		_, err = w.dst.Write(w.buf[:n])
	} else {
		err = w.emitRegions(safe)
	}
	w.buf = w.buf[:copy(w.buf, w.buf[n:])]
	w.base = safe
	if err != nil {
		w.err = err
	}
	return err
}

func (w *Writer) emitRegions(safe int64) error {
	slices.SortFunc(w.regions, func(a, b span) int { return cmp.Compare(a.start, b.start) })
	out := w.out[:0]
	at := func(off int64) int { return int(off - w.base) }
	c := max(w.base, w.covered)
	keep := w.regions[:0]
	for _, rg := range w.regions {
		if rg.start >= safe {
			keep = append(keep, rg)
			continue
		}
		if rg.start > c {
			out = append(out, w.buf[at(c):at(rg.start)]...)
			c = rg.start
		}
		if rg.start >= w.covered {
			out = append(out, w.repl...)
			w.count++
		}
		w.covered = max(w.covered, rg.end)
		c = max(c, w.covered)
	}
	if c < safe {
		out = append(out, w.buf[at(c):at(safe)]...)
	}
	w.regions = keep
	w.out = out
	if len(out) == 0 {
		return nil
	}
	_, err := w.dst.Write(out)
	return err
}
