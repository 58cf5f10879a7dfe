package audit

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
)

// maxLineLen bounds how far back resume looks for the start of the last line.
const maxLineLen = 64 << 20

// resumeChain finds where the chain of an existing log stands, so that a
// restarted proxy continues it: from the last line of name, or of name.1 when
// name is missing or empty (it was just rotated). nil means a new chain.
func resumeChain(name string, key []byte) (*link, error) {
	for _, n := range []string{name, name + ".1"} {
		line, err := lastLine(n)
		if err != nil {
			return nil, err
		}
		if line == nil {
			continue
		}
		r, err := checkLine(line, nil, key)
		if err != nil {
			return nil, fmt.Errorf("audit: cannot continue the hash chain of %q: its last line is not a valid audit record (%v); move the file aside (keep it as evidence) and start again", n, err)
		}
		return &link{seq: r.Seq, hash: r.Hash}, nil
	}
	return nil, nil
}

// lastLine returns the last line of a regular file without its newline, or nil
// when the file is missing, empty or not a regular file (a device such as
// /dev/full has no history to continue).
func lastLine(name string) ([]byte, error) {
	f, err := os.Open(name)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("audit: cannot read %q to continue its hash chain: %w", name, err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("audit: cannot stat %q: %w", name, err)
	}
	if !st.Mode().IsRegular() || st.Size() == 0 {
		return nil, nil
	}
	end := st.Size()
	var tail []byte
	const chunk = 64 << 10
	for off := end; off > 0; {
		n := int64(chunk)
		if off < n {
			n = off
		}
		off -= n
		buf := make([]byte, n)
		if _, err := f.ReadAt(buf, off); err != nil && err != io.EOF {
			return nil, fmt.Errorf("audit: cannot read %q: %w", name, err)
		}
		tail = append(buf, tail...)
		if off+n == end && tail[len(tail)-1] != '\n' {
			return nil, fmt.Errorf("audit: cannot continue the hash chain of %q: its last line is incomplete (a write was cut short); move the file aside (keep it as evidence) and start again", name)
		}
		if i := bytes.LastIndexByte(tail[:len(tail)-1], '\n'); i >= 0 {
			return tail[i+1 : len(tail)-1], nil
		}
		if len(tail) > maxLineLen {
			return nil, fmt.Errorf("audit: cannot continue the hash chain of %q: its last line is longer than %d bytes", name, maxLineLen)
		}
	}
	return tail[:len(tail)-1], nil
}
