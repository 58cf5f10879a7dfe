package up

import (
	"bytes"
	"fmt"
	"io"
	"sync"
)

// lineWriter prefixes each complete line written to it, so the output of
// several parts stays readable when interleaved. Writers made from the same
// sink share its lock, so lines never mix.
type lineWriter struct {
	sink   *sink
	prefix string
	buf    []byte
}

type sink struct {
	mu sync.Mutex
	w  io.Writer
}

func (s *sink) writer(prefix string) *lineWriter {
	return &lineWriter{sink: s, prefix: prefix}
}

func (s *sink) printf(format string, args ...any) {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, _ = io.WriteString(s.w, fmt.Sprintf(format, args...))
}

func (l *lineWriter) Write(p []byte) (int, error) {
	l.buf = append(l.buf, p...)
	for {
		i := bytes.IndexByte(l.buf, '\n')
		if i < 0 {
			return len(p), nil
		}
		l.sink.mu.Lock()
		_, err := io.WriteString(l.sink.w, l.prefix+string(l.buf[:i+1]))
		l.sink.mu.Unlock()
		l.buf = l.buf[i+1:]
		if err != nil {
			return len(p), err
		}
	}
}

// printf writes one formatted line through the prefix, for progress
// callbacks (Logf fields) of the packages up drives.
func (l *lineWriter) printf(format string, args ...any) {
	_, _ = l.Write([]byte(fmt.Sprintf(format, args...) + "\n"))
}
