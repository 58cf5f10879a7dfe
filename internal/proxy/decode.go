package proxy

import (
	"bufio"
	"compress/flate"
	"compress/gzip"
	"compress/zlib"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/andybalholm/brotli"
	"github.com/klauspost/compress/zstd"
)

// errUnknownEncoding refuses a response the redactor cannot read.
type errUnknownEncoding struct{ encoding string }

func (e errUnknownEncoding) Error() string {
	return fmt.Sprintf("upstream answered with Content-Encoding %q, which the proxy cannot decode to scan for secrets; refused rather than passed unscanned", e.encoding)
}

// decodedBody returns resp's body with its content coding undone (gzip,
// deflate, br, zstd, in the order they were applied) and removes the
// Content-Encoding header, since the agent then gets identity.
func decodedBody(resp *http.Response) (io.Reader, error) {
	var body io.Reader = resp.Body
	encs := resp.Header.Values("Content-Encoding")
	var codings []string
	for _, e := range encs {
		for _, c := range strings.Split(e, ",") {
			if c = strings.ToLower(strings.TrimSpace(c)); c != "" && c != "identity" {
				codings = append(codings, c)
			}
		}
	}
	// Codings are listed in the order applied: undo the last first.
	for i := len(codings) - 1; i >= 0; i-- {
		switch codings[i] {
		case "gzip", "x-gzip":
			zr, err := gzip.NewReader(body)
			if err != nil {
				return nil, fmt.Errorf("upstream gzip body is corrupt: %w", err)
			}
			body = zr
		case "deflate":
			body = deflateReader(body)
		case "br":
			body = brotli.NewReader(body)
		case "zstd":
			zr, err := zstd.NewReader(body, zstd.WithDecoderConcurrency(1))
			if err != nil {
				return nil, fmt.Errorf("upstream zstd body is corrupt: %w", err)
			}
			body = zr.IOReadCloser()
		default:
			return nil, errUnknownEncoding{codings[i]}
		}
	}
	resp.Header.Del("Content-Encoding")
	return body, nil
}

// deflateReader reads HTTP "deflate", which should be zlib (RFC 1950) but
// is raw deflate from some servers: the first two bytes tell which.
func deflateReader(r io.Reader) io.Reader {
	br := bufio.NewReader(r)
	if h, err := br.Peek(2); err == nil && h[0]&0x0f == 8 && (uint16(h[0])<<8|uint16(h[1]))%31 == 0 {
		if zr, err := zlib.NewReader(br); err == nil {
			return zr
		}
	}
	return flate.NewReader(br)
}
