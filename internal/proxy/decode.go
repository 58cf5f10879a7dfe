package proxy

import (
	"bufio"
	"compress/flate"
	"compress/gzip"
	"compress/zlib"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"

	"github.com/andybalholm/brotli"
	"github.com/klauspost/compress/zstd"
)

// A response body is decoded so that the redactor can read it (see
// Credentials.redactResponse), and decoding is the one place where a few
// bytes from an upstream become many in the proxy. Three things bound it:
//
//   - each decoder's window, the history it keeps: 32 KiB for gzip and
//     deflate by their format, at most 16 MiB for br (RFC 7932's largest;
//     the large-window extension is off), at most zstdMaxWindow for zstd;
//   - the decoded output per byte read from the upstream (decodeRatio), so
//     a few KiB cannot become gigabytes of work for the proxy and traffic
//     for the agent. It bounds the output of every coding of a stack, not
//     only the last: `Content-Encoding: gzip, br` could otherwise have br
//     expand KiB into gigabytes of empty gzip members that gzip decodes to
//     nothing. Each layer is held to the wire bytes, not to its own input,
//     so the bound does not multiply with the layers (RFC 9110 allows any
//     stack, and a legitimate one compresses once: its other layers stay
//     near 1:1). There is no cap on a body's decoded size: decoding
//     streams in constant memory, and a 4 GB download compressed as
//     ordinary data compresses stays far below the ratio;
//   - the decoding memory of all responses at once (decodeBudget): each
//     decoded response holds its decoders' worst case until it ends.
//
// An upstream over a limit gets its response refused with a 502 naming the
// problem when that is known before the head goes out (a declared window),
// or the stream cut, with the audit record saying why
// (decompression_limit), when it shows later. A response that finds no
// room in the budget within decodeWait is refused with a 503
// (decompression_busy).
const (
	// zstdMaxWindow is RFC 9659 §3's limit for HTTP's zstd coding: an
	// encoder must not use a larger window, so a decoder can bound its
	// memory. The library's default is 512 MiB (issue 23: 16 KiB of zstd
	// declaring it grew the proxy's RSS by 514 MiB).
	zstdMaxWindow = 8 << 20
	// decodeRatio is the most decoded bytes per byte read from the
	// upstream. Text and JSON compress 5–20:1, the most repetitive logs
	// about 100:1; a run of one repeated byte reaches 1032:1 in gzip and
	// far more in br and zstd, which is what bombs are made of. Apache's
	// mod_deflate refuses request bodies past 200:1
	// (DeflateInflateRatioLimit) for the same reason.
	decodeRatio = 256
	// decodeAllowance is the decoded output allowed before the ratio
	// applies, so that a small body of highly compressible text passes.
	decodeAllowance = 4 << 20
)

// The decoding memory each coding may hold: its window and its tables,
// measured with TestDecoderMemoryIsWithinItsCharge.
const (
	flateCharge = 64 << 10 // 32 KiB window, Huffman tables, 4 KiB read buffer
	brotliExtra = 256 << 10
	zstdCharge  = zstdMaxWindow + 1<<20 // window + 128 KiB block + tables
)

// errUnknownEncoding refuses a response the redactor cannot read.
type errUnknownEncoding struct{ encoding string }

func (e errUnknownEncoding) Error() string {
	return fmt.Sprintf("upstream answered with Content-Encoding %q, which the proxy cannot decode to scan for secrets; refused rather than passed unscanned", e.encoding)
}

// decodeLimitError is a compressed body over one of the decoding limits.
type decodeLimitError struct{ msg string }

func (e *decodeLimitError) Error() string { return e.msg }

// reasonDecodeLimit is the audit reason of a response refused or cut for
// being over a decoding limit.
const reasonDecodeLimit = "decompression_limit"

// codings lists resp's content codings in the order they were applied,
// identity left out.
func codings(resp *http.Response) []string {
	var out []string
	for _, e := range resp.Header.Values("Content-Encoding") {
		for _, c := range strings.Split(e, ",") {
			if c = strings.ToLower(strings.TrimSpace(c)); c != "" && c != "identity" {
				out = append(out, c)
			}
		}
	}
	return out
}

// maxCodings is the most content codings one body may stack.
const maxCodings = 3

// bodiless says whether resp carries no body whatever its headers say: the
// answer to a HEAD, a 204 or a 304 (RFC 9110 §6.4.1). Its Content-Encoding
// describes the resource and is passed on as it is.
func bodiless(resp *http.Response) bool {
	return resp.Request.Method == http.MethodHead || resp.StatusCode == http.StatusNoContent ||
		resp.StatusCode == http.StatusNotModified || resp.ContentLength == 0
}

// decodedBody returns resp's body with its content codings undone (gzip,
// deflate, br, zstd, in the order they were applied) and removes the
// Content-Encoding header, since the agent then gets identity. The decoders'
// memory is granted by budget for client before any is made; the returned
// body gives it back when closed. A window declared over the limits at the
// start of the body is refused here, before the response head goes out.
func decodedBody(resp *http.Response, budget *decodeBudget, x *exchange) (*decodedReader, error) {
	cs := codings(resp)
	if len(cs) == 0 || bodiless(resp) {
		// Nothing to undo: the body is scanned as it comes (nil).
		return nil, nil
	}
	d := &decodedReader{x: x, wire: &countingReader{r: resp.Body}}
	// Each layer may expand up to the ratio against the wire bytes, so the
	// work grows with the depth of the stack: a header of a thousand
	// "gzip"s over stored layers would make one small body gigabytes of
	// decoding. Nobody stacks more than two in earnest (curl caps at 5
	// after CVE-2022-32206).
	if len(cs) > maxCodings {
		return nil, &decodeLimitError{fmt.Sprintf("the upstream's body stacks %d content codings, more than the %d the proxy decodes", len(cs), maxCodings)}
	}
	// Known codings only, before anything is read or granted.
	for _, c := range cs {
		switch c {
		case "gzip", "x-gzip", "deflate", "br", "zstd":
		default:
			return nil, errUnknownEncoding{c}
		}
	}
	// The outermost coding (applied last) is read first: its header is at
	// the start of the body, and says how much memory it needs.
	br := bufio.NewReader(d.wire)
	var charge int64
	for i, c := range cs {
		first := i == len(cs)-1
		switch c {
		case "gzip", "x-gzip", "deflate":
			charge += flateCharge
		case "br":
			bits := 24
			if first {
				var err error
				if bits, err = brotliWindowBits(br); err != nil {
					return nil, err
				}
			}
			charge += 1<<bits + brotliExtra
		case "zstd":
			if first {
				if err := checkZstdWindow(br); err != nil {
					return nil, err
				}
			}
			charge += zstdCharge
		}
	}
	// At most maxCodings × the largest charge, within one client's share.
	release, err := budget.acquire(x.ctx, x.who, charge)
	if err != nil {
		return nil, err
	}
	d.release = release
	var body io.Reader = br
	// Codings are listed in the order applied: undo the last first.
	for i := len(cs) - 1; i >= 0; i-- {
		if i < len(cs)-1 {
			// The output of the layer just made is this one's input.
			body = &ratioReader{r: body, d: d, coding: cs[i+1]}
		}
		switch cs[i] {
		case "gzip", "x-gzip":
			zr, err := gzip.NewReader(body)
			if err != nil {
				d.Close()
				return nil, fmt.Errorf("upstream gzip body is corrupt: %w", err)
			}
			body = zr
		case "deflate":
			body = deflateReader(body)
		case "br":
			body = brotli.NewReader(body)
		case "zstd":
			// One goroutine-free decoder, its window and memory capped: a
			// larger frame fails with ErrWindowSizeExceeded or
			// ErrDecoderSizeExceeded (a single-segment frame's window is
			// its declared content size).
			zr, err := zstd.NewReader(body, zstd.WithDecoderConcurrency(1), zstd.WithDecoderLowmem(true),
				zstd.WithDecoderMaxWindow(zstdMaxWindow), zstd.WithDecoderMaxMemory(zstdMaxWindow))
			if err != nil {
				d.Close()
				return nil, fmt.Errorf("upstream zstd body is corrupt: %w", err)
			}
			d.closers = append(d.closers, zr.Close)
			body = zr
		}
	}
	d.out = &ratioReader{r: body, d: d, coding: cs[0]}
	resp.Header.Del("Content-Encoding")
	return d, nil
}

// ratioReader is the output of one decoder of d's stack, held to
// decodeRatio against the bytes read from the upstream.
type ratioReader struct {
	r       io.Reader
	d       *decodedReader
	coding  string
	decoded int64
}

func (l *ratioReader) Read(p []byte) (int, error) {
	if l.d.limit != nil {
		return 0, l.d.limit
	}
	n, err := l.r.Read(p)
	l.decoded += int64(n)
	if wire := l.d.wire.n; l.decoded > decodeAllowance && l.decoded/decodeRatio > wire {
		// Noted on d too: an outer decoder may not pass the error on as it is.
		l.d.limit = &decodeLimitError{fmt.Sprintf("the upstream's compressed body decoded (its %s coding) to %d bytes from %d: more than %d times its size (after the first %d MiB), which only a decompression bomb does",
			l.coding, l.decoded, wire, decodeRatio, decodeAllowance>>20)}
		return n, l.d.limit
	}
	return n, err
}

// decodedReader is a response body being decoded: the last decoder's
// output; the decoders to close; the budget to give back. It notes on x why
// decoding stopped, for the audit record.
type decodedReader struct {
	out  io.Reader
	wire *countingReader // the compressed bytes as they came
	// limit is set once any layer's output went over decodeRatio.
	limit   error
	x       *exchange
	closers []func()
	release func()
	once    sync.Once
}

func (d *decodedReader) Read(p []byte) (int, error) {
	if d.x.decodeErr != nil {
		return 0, d.x.decodeErr
	}
	n, err := d.out.Read(p)
	if d.limit != nil {
		err = d.limit
	}
	if err != nil && err != io.EOF {
		d.note(err)
	}
	return n, err
}

// note records why decoding failed: a limit (reason decompression_limit),
// or else the upstream's fault (a corrupt body), unless reading the
// upstream had already failed.
func (d *decodedReader) note(err error) {
	switch {
	case errors.Is(err, zstd.ErrWindowSizeExceeded), errors.Is(err, zstd.ErrDecoderSizeExceeded):
		d.x.decodeErr = &decodeLimitError{fmt.Sprintf("the upstream's zstd body declares a window larger than %d MiB (RFC 9659's limit for HTTP)", zstdMaxWindow>>20)}
	case errors.As(err, new(*decodeLimitError)):
		d.x.decodeErr = err
	case d.x.upstreamErr == nil:
		d.x.upstreamErr = fmt.Errorf("decoding its compressed body: %w", err)
	}
}

// Close ends the decoders and gives their memory back; the caller closes
// the upstream's body.
func (d *decodedReader) Close() {
	d.once.Do(func() {
		for _, c := range d.closers {
			c()
		}
		if d.release != nil {
			d.release()
		}
	})
}

type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

// brotliWindowBits reads WBITS from the start of a brotli stream (RFC 7932
// §9.1: 1 to 7 bits, least significant first) without consuming it.
func brotliWindowBits(br *bufio.Reader) (int, error) {
	b, err := br.Peek(1)
	if err != nil {
		return 0, fmt.Errorf("upstream br body is corrupt: %w", err)
	}
	v := b[0]
	switch {
	case v&1 == 0:
		return 16, nil
	case v>>1&7 != 0:
		return 17 + int(v>>1&7), nil
	case v>>4&7 == 1:
		// Large-window brotli, which the decoder is not told to accept.
		return 0, &decodeLimitError{"the upstream's br body asks for a large window (over 16 MiB), which the proxy does not decode"}
	case v>>4&7 != 0:
		return 8 + int(v>>4&7), nil
	}
	return 17, nil
}

// checkZstdWindow refuses a zstd body whose first frame declares a window
// over zstdMaxWindow, reading no further than the frame header (a streamed
// body may send nothing more for a while). A body that does not start with
// a readable frame header is left to the decoder, which enforces the same
// limit on every frame.
func checkZstdWindow(br *bufio.Reader) error {
	var h zstd.Header
	for k := 5; k <= zstd.HeaderMaxSize; k++ {
		b, err := br.Peek(k)
		herr := h.Decode(b)
		if herr == io.ErrUnexpectedEOF && err == nil {
			continue
		}
		if herr != nil || h.Skippable {
			return nil
		}
		w := h.WindowSize
		if h.SingleSegment {
			w = h.FrameContentSize
		}
		if w > zstdMaxWindow {
			return &decodeLimitError{fmt.Sprintf("the upstream's zstd body declares a window of %d MiB, over the %d MiB the proxy decodes (RFC 9659's limit for HTTP)", w>>20, zstdMaxWindow>>20)}
		}
		return nil
	}
	return nil
}

// deflateReader reads HTTP "deflate", which should be zlib (RFC 1950) but
// is raw deflate from some servers: the first two bytes tell which.
func deflateReader(r io.Reader) io.Reader {
	br := bufio.NewReader(r) // r itself when it is a bufio.Reader already
	if h, err := br.Peek(2); err == nil && h[0]&0x0f == 8 && (uint16(h[0])<<8|uint16(h[1]))%31 == 0 {
		if zr, err := zlib.NewReader(br); err == nil {
			return zr
		}
	}
	return flate.NewReader(br)
}
