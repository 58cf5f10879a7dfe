package redact

import (
	"bytes"
	"fmt"
	"sync"
	"unsafe"
)

// Redactor holds the compiled search forms of a set of secrets. It is
// immutable and safe for concurrent use; each stream gets its own Writer or
// Reader.
type Redactor struct {
	m *matcher
	// views find the escaped forms that mix escapes and literals freely.
	views       []*decodeView
	replacement []byte
	// held is what a Flush may keep back at the end of a stream (shape.go).
	held *[256]bool
	// readers keeps the buffers of closed Readers (two chunkSize buffers
	// each) for the next response: allocating and zeroing them anew for
	// every response was a fifth of the proxy's time with a credential on.
	readers sync.Pool
}

// New compiles secrets into a Redactor. It refuses secrets shorter than
// MinSecretLen and a replacement that contains a secret; its errors name the
// secret by position, never by value. No secrets is valid: the Redactor then
// passes everything through.
//
// The Redactor keeps copies of secrets, never the caller's slices: the
// caller may wipe or unmap them (the vault's memory is inaccessible at rest)
// the moment New returns.
func New(secrets [][]byte, opts Options) (*Redactor, error) {
	secrets = cloneAll(secrets)
	repl := opts.replacement()
	enc := opts.encodings()
	if enc&^AllEncodings != 0 {
		return nil, fmt.Errorf("redact: unknown encoding bits %#x in Options.Encodings (use the Raw, Base64, Hex, Percent, JSON, HTML and UTF16 constants)", uint8(enc&^AllEncodings))
	}
	for i, s := range secrets {
		if len(s) < MinSecretLen {
			return nil, fmt.Errorf("redact: secret #%d is %d bytes long; secrets shorter than %d bytes cannot be redacted without mangling ordinary text (use a longer secret or leave it out)", i+1, len(s), MinSecretLen)
		}
		if bytes.Contains(repl, s) {
			return nil, fmt.Errorf("redact: the replacement text contains secret #%d; choose a different Options.Replacement", i+1)
		}
	}
	lines, multiline := splitLines(secrets)
	seen := map[string]bool{}
	var pats []pattern
	add := func(s []byte, enc Encoding) {
		for _, p := range patternsFor(s, enc) {
			key := string(p.core) + p.kind()
			if !seen[key] {
				seen[key] = true
				pats = append(pats, p)
			}
		}
	}
	// The window is public (shape.go): at least as wide as every form of
	// every secret of these lengths, and no wider.
	window := 0
	for _, s := range lines {
		add(s, enc)
		window = max(window, publicSpan(len(s), enc))
	}
	for _, s := range multiline {
		add(s, enc&printableForms)
		window = max(window, publicSpan(len(s), enc&printableForms))
	}
	r := &Redactor{m: newMatcher(pats), replacement: repl, held: heldSet(lines, enc)}
	// A multi-line secret's printable forms carry its spaces and non-ASCII
	// bytes literally (JSON escapes neither).
	for c, in := range heldSet(multiline, enc&printableForms) {
		r.held[c] = r.held[c] || in
	}
	if len(lines) > 0 && enc&JSON != 0 {
		r.views = append(r.views, newJSONView(lines))
	}
	if len(lines) > 0 && enc&Percent != 0 {
		r.views = append(r.views, newPercentView(lines))
	}
	if len(lines) > 0 && enc&HTML != 0 {
		r.views = append(r.views, newHTMLView(lines))
	}
	for _, v := range r.views {
		// The window must hold a view's widest hit, or a hit crossing two
		// writes could be passed on before it is seen whole.
		r.m.maxSpan = max(r.m.maxSpan, v.span)
	}
	r.m.maxSpan = max(r.m.maxSpan, window)
	return r, nil
}

// Window is the longest stretch of input a single hit on any secret of
// these lengths can cover, whatever its bytes. A Writer never holds back
// more than Window-1 bytes after a Write or a Flush, which is also the
// overlap it keeps so that a hit split across writes is still found.
func (r *Redactor) Window() int { return r.m.maxSpan }

// HoldsLineBreaks reports whether a Flush may keep back a line break: then
// an SSE event or NDJSON line can wait for the next chunk, up to a window,
// instead of going out when its newline arrives. Only secrets whose shape
// makes every byte holdable (characters beyond Latin-1, with UTF-16 on) do
// that; the proxy warns about it at start.
func (r *Redactor) HoldsLineBreaks() bool { return r.held['\n'] }

// Redact returns b with every hit replaced, and the number of replacements.
// It is for small, complete values such as header fields; use a Writer or
// Reader for bodies.
func (r *Redactor) Redact(b []byte) ([]byte, int) {
	if !r.mayHit(b) {
		// Almost every value has nothing to replace: no copy, no Writer.
		return b, 0
	}
	out := bytes.NewBuffer(make([]byte, 0, len(b)))
	// Size the buffer to the input: one-shot calls (every header of every
	// response) must not pay for a streaming-sized buffer.
	w := r.newWriter(out, len(b)+r.m.maxSpan)
	// Writes to a bytes.Buffer cannot fail.
	_, _ = w.Write(b)
	_ = w.Close()
	return out.Bytes(), w.Count()
}

// RedactString is Redact for a string; s itself is returned, without a
// copy, when there is nothing to replace.
func (r *Redactor) RedactString(s string) (string, int) {
	// The scan only reads, so it may look at the string's bytes in place.
	if !r.mayHit(unsafe.Slice(unsafe.StringData(s), len(s))) {
		return s, 0
	}
	b, n := r.Redact([]byte(s))
	return string(b), n
}

// mayHit reports whether b, taken as a complete input, holds a hit of any
// form. It allocates nothing.
func (r *Redactor) mayHit(b []byte) bool {
	var f hitFlag
	r.m.find(b, 0, true, f.set)
	for _, v := range r.views {
		if f {
			break
		}
		v.find(b, 0, true, f.set)
	}
	return bool(f)
}

type hitFlag bool

func (f *hitFlag) set(int, int) { *f = true }

func cloneAll(in [][]byte) [][]byte {
	out := make([][]byte, len(in))
	for i, s := range in {
		out[i] = bytes.Clone(s)
	}
	return out
}
