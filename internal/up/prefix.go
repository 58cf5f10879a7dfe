package up

import (
	"bytes"
	"fmt"
	"io"
	"strings"
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
	// fallback takes over when writing to w fails: `up | tee log` whose
	// tee died with the terminal's Ctrl-C. up must still stop everything it
	// started, and a write error handed back to a child's output pipe would
	// close that pipe and kill the child (the proxy before it writes its
	// checkpoint). Nil: what follows is dropped.
	fallback io.Writer
	recent   []string // the latest tailLines lines, for error messages
}

// write writes line to the current writer, moving to the fallback (once,
// then to nothing) when that fails; s.mu is held. It never fails: up's
// output is a report, not something to stop for.
func (s *sink) write(line string) {
	for s.w != nil {
		if _, err := io.WriteString(s.w, line); err == nil {
			return
		}
		s.w, s.fallback = s.fallback, nil
	}
}

// redirect sends what follows to w instead, returning where it went before:
// while a command given to up owns the terminal, the parts' output goes to
// a log file.
func (s *sink) redirect(w io.Writer) io.Writer {
	s.mu.Lock()
	defer s.mu.Unlock()
	prev := s.w
	s.w = w
	return prev
}

// remember keeps line among the recent ones; s.mu is held.
func (s *sink) remember(line string) {
	if len(s.recent) >= tailLines {
		s.recent = append(s.recent[:0], s.recent[len(s.recent)-tailLines/2:]...)
	}
	s.recent = append(s.recent, strings.TrimSuffix(line, "\n"))
}

func (s *sink) writer(prefix string) *lineWriter {
	return &lineWriter{sink: s, prefix: prefix}
}

func (s *sink) printf(format string, args ...any) {
	s.mu.Lock()
	defer s.mu.Unlock()
	line := fmt.Sprintf(format, args...)
	s.remember(line)
	s.write(line)
}

func (l *lineWriter) Write(p []byte) (int, error) {
	l.buf = append(l.buf, p...)
	for {
		i := bytes.IndexByte(l.buf, '\n')
		if i < 0 {
			return len(p), nil
		}
		line := l.prefix + string(l.buf[:i+1])
		l.sink.mu.Lock()
		l.sink.remember(line)
		l.sink.write(line)
		l.sink.mu.Unlock()
		l.buf = l.buf[i+1:]
	}
}

// printf writes one formatted line through the prefix, for progress
// callbacks (Logf fields) of the packages up drives.
func (l *lineWriter) printf(format string, args ...any) {
	_, _ = l.Write([]byte(fmt.Sprintf(format, args...) + "\n"))
}
