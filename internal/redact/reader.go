package redact

import (
	"bytes"
	"errors"
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
	// count is kept when Close gives the Writer back.
	count int
	r     *Redactor
}

// errReaderClosed is what a Read after Close returns.
var errReaderClosed = errors.New("redact: read after Close")

// NewReader returns a Reader of the redacted content of src. Close it when
// done with it, so that its buffers serve the next Reader; it does not close
// src.
func (r *Redactor) NewReader(src io.Reader) *Reader {
	rd, _ := r.readers.Get().(*Reader)
	if rd == nil {
		rd = &Reader{in: make([]byte, chunkSize), r: r}
		rd.w = r.NewWriter(&rd.out)
	} else {
		rd.w.reset(&rd.out)
	}
	rd.src, rd.done, rd.count = src, nil, 0
	rd.out.Reset()
	return rd
}

// Count is the number of replacements passed on so far, also after Close.
func (rd *Reader) Count() int {
	if rd.w == nil {
		return rd.count
	}
	return rd.w.Count()
}

// Close gives the Reader's buffers back for reuse; later Reads fail. It may
// be called more than once. Bytes not yet read are dropped.
func (rd *Reader) Close() error {
	if rd.w == nil {
		return nil
	}
	rd.count = rd.w.Count()
	// A fresh Reader takes the buffers; this one keeps only its count, so
	// a stray Read after Close cannot touch another response's bytes.
	rd.r.readers.Put(&Reader{w: rd.w, out: rd.out, in: rd.in, r: rd.r})
	rd.w, rd.in, rd.src, rd.out = nil, nil, nil, bytes.Buffer{}
	rd.done = errReaderClosed
	return nil
}

func (rd *Reader) Read(p []byte) (int, error) {
	if rd.w == nil {
		return 0, errReaderClosed
	}
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
