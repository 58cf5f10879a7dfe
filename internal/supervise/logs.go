package supervise

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"strconv"
	"sync"
	"unicode/utf8"
)

// maxLineBytes is where a service's line is cut: a line longer than this comes
// out as several prefixed lines, so one runaway writer cannot hold the stream.
const maxLineBytes = 8192

// logStream writes whole prefixed lines to init's stdout. Each line is one
// Write under a lock, so lines of concurrent services never interleave.
type logStream struct {
	mu sync.Mutex
	w  io.Writer
}

// line writes text prefixed "[name] ", unless the service already wrote
// that prefix itself (ollama-verify prints the seed's "[ollama-verify] …"
// lines): `docker logs … | grep ollama-verify` shows them once, as the seed
// does.
func (l *logStream) line(name, text string) {
	buf := make([]byte, 0, len(name)+len(text)+4)
	if len(text) <= len(name)+2 || text[0] != '[' || text[1:len(name)+1] != name || text[len(name)+1:len(name)+3] != "] " {
		buf = append(buf, '[')
		buf = append(buf, name...)
		buf = append(buf, "] "...)
	}
	buf = append(buf, text...)
	buf = append(buf, '\n')
	l.mu.Lock()
	defer l.mu.Unlock()
	_, _ = l.w.Write(buf)
}

// initf logs one of init's own lifecycle events.
func (l *logStream) initf(format string, args ...any) {
	l.line("init", fmt.Sprintf(format, args...))
}

// pump copies r to the stream line by line under name until EOF.
func (l *logStream) pump(name string, r io.Reader) {
	br := bufio.NewReaderSize(r, maxLineBytes)
	var carry []byte // the torn tail of a cut line's last character
	for {
		chunk, err := br.ReadSlice('\n')
		data := append(carry, chunk...)
		carry = nil
		if err == bufio.ErrBufferFull {
			cut := runeSafeCut(data)
			l.line(name, escape(data[:cut]))
			carry = append(carry, data[cut:]...)
			continue
		}
		if len(data) > 0 {
			line := bytes.TrimSuffix(data, []byte("\n"))
			line = bytes.TrimSuffix(line, []byte("\r"))
			l.line(name, escape(line))
		}
		if err != nil {
			return
		}
	}
}

// runeSafeCut returns where to cut b so that its last character is not torn.
func runeSafeCut(b []byte) int {
	for i := len(b) - 1; i >= 0 && i >= len(b)-utf8.UTFMax; i-- {
		if utf8.RuneStart(b[i]) {
			if utf8.FullRune(b[i:]) {
				return len(b)
			}
			if i == 0 {
				return len(b)
			}
			return i
		}
	}
	return len(b)
}

// escape makes a line safe for a terminal and a log collector: invalid UTF-8
// and control characters other than tab become \xNN.
func escape(b []byte) string {
	clean := true
	for i := 0; i < len(b); {
		r, size := utf8.DecodeRune(b[i:])
		if (r == utf8.RuneError && size == 1) || (r < 0x20 && r != '\t') || r == 0x7f {
			clean = false
			break
		}
		i += size
	}
	if clean {
		return string(b)
	}
	out := make([]byte, 0, len(b)+8)
	for i := 0; i < len(b); {
		r, size := utf8.DecodeRune(b[i:])
		if (r == utf8.RuneError && size == 1) || (r < 0x20 && r != '\t') || r == 0x7f {
			out = append(out, `\x`...)
			out = strconv.AppendUint(out, uint64(b[i])>>4, 16)
			out = strconv.AppendUint(out, uint64(b[i])&0xf, 16)
			i++
			continue
		}
		out = append(out, b[i:i+size]...)
		i += size
	}
	return string(out)
}
