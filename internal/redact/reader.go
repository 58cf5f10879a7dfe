package redact

import (
	"bytes"
	"io"
)

// Reader redacts what it reads from src. After each read from src it passes
// on what Writer.Flush would, so a streamed response keeps streaming. When
// src fails with an error other than io.EOF, the bytes still held back (which
// may begin a secret) are dropped and the error is returned.
type Reader struct {
	src  io.Reader
	w    *Writer
	out  bytes.Buffer
	in   []byte
	done error
}

// NewReader returns a Reader of the redacted content of src.
func (r *Redactor) NewReader(src io.Reader) *Reader {
	rd := &Reader{src: src, in: make([]byte, chunkSize)}
	rd.w = r.NewWriter(&rd.out)
	return rd
}

// Count is the number of replacements passed on so far.
func (rd *Reader) Count() int { return rd.w.Count() }

func (rd *Reader) Read(p []byte) (int, error) {
	for rd.out.Len() == 0 {
		if rd.done != nil {
			return 0, rd.done
		}
		n, err := rd.src.Read(rd.in)
		if n > 0 {
			// Writes into a bytes.Buffer cannot fail.
			_, _ = rd.w.Write(rd.in[:n])
			_ = rd.w.Flush()
		}
		switch {
		case err == io.EOF:
			_ = rd.w.Close()
			rd.done = io.EOF
		case err != nil:
			rd.done = err
		}
	}
	return rd.out.Read(p)
}
