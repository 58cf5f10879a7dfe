package audit

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
)

// Stdin is the file name that reads standard input (`docker logs proxy |
// slapenir audit show -`).
const Stdin = "-"

// eachLine calls fn with every line of the named file (without its newline),
// numbered from 1. Lines may be of any length.
func eachLine(name string, fn func(no int, line []byte) error) error {
	var r io.Reader = os.Stdin
	if name != Stdin {
		f, err := os.Open(name)
		if err != nil {
			return fmt.Errorf("audit: cannot open audit file: %w", err)
		}
		defer f.Close()
		r = f
	}
	br := bufio.NewReaderSize(r, 64<<10)
	for no := 1; ; no++ {
		line, err := br.ReadBytes('\n')
		if len(line) > 0 {
			if ferr := fn(no, bytes.TrimSuffix(line, []byte{'\n'})); ferr != nil {
				return ferr
			}
		}
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("audit: cannot read %s: %w", name, err)
		}
	}
}

// errStop ends eachLine early without an error.
var errStop = errors.New("stop")

// ChainOrder sorts files by the seq of their first record, oldest first, so
// that `audit.jsonl*` (which the shell lists newest first) reads in the order
// the records were written. Files whose first line is no record keep their
// place at the front, where verify reports them. Stdin cannot be peeked at, so
// with it the order is the one given.
func ChainOrder(names []string) []string {
	firstSeq := make(map[string]uint64, len(names))
	for _, n := range names {
		if n == Stdin {
			return names
		}
		_ = eachLine(n, func(_ int, line []byte) error {
			var r struct {
				Seq uint64 `json:"seq"`
			}
			if json.Unmarshal(line, &r) == nil {
				firstSeq[n] = r.Seq
			}
			return errStop
		})
	}
	sorted := append([]string(nil), names...)
	sort.SliceStable(sorted, func(i, j int) bool { return firstSeq[sorted[i]] < firstSeq[sorted[j]] })
	return sorted
}

// eachRecord calls fn with every line of the files (in chain order) that parses
// as a Record; other lines are reported to warn with their file and number, and
// skipped.
func eachRecord(names []string, warn io.Writer, fn func(r *Record, raw []byte) error) error {
	for _, name := range ChainOrder(names) {
		err := eachLine(name, func(no int, line []byte) error {
			if len(bytes.TrimSpace(line)) == 0 {
				return nil
			}
			var r Record
			if err := json.Unmarshal(line, &r); err != nil {
				fmt.Fprintf(warn, "%s:%d: skipped, not an audit record: %v\n", name, no, err)
				return nil
			}
			return fn(&r, line)
		})
		if err != nil {
			return err
		}
	}
	return nil
}
