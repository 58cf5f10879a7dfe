package audit

import (
	"fmt"
)

// FileReport is what Verify found in one file.
type FileReport struct {
	Name     string
	Records  int
	FirstSeq uint64 // 0 when the file holds no record
	LastSeq  uint64
}

// ChainError is the first line of a log that breaks the chain.
type ChainError struct {
	Name string
	Line int
	Err  error
}

func (e *ChainError) Error() string { return fmt.Sprintf("%s:%d: %v", e.Name, e.Line, e.Err) }

func (e *ChainError) Unwrap() error { return e.Err }

// Verify checks that every line of the files parses as a record carrying the
// hash of its own content, and that the records form one unbroken chain across
// the files, taken oldest first (see chainOrder). It returns a report for each
// file that was checked to its end; a break is returned as a *ChainError naming
// the first bad line.
//
// The chain proves that lines were not edited, deleted, inserted or reordered
// after they were written, but not that older files were not dropped: the first
// record may continue a file that was not given.
func Verify(names []string) ([]FileReport, error) {
	var (
		reports []FileReport
		prev    *link
	)
	for _, name := range chainOrder(names) {
		rep := FileReport{Name: name}
		err := eachLine(name, func(no int, line []byte) error {
			r, err := checkLine(line, prev)
			if err != nil {
				return &ChainError{Name: name, Line: no, Err: err}
			}
			prev = &link{seq: r.Seq, hash: r.Hash}
			if rep.Records == 0 {
				rep.FirstSeq = r.Seq
			}
			rep.Records++
			rep.LastSeq = r.Seq
			return nil
		})
		if err != nil {
			return reports, err
		}
		reports = append(reports, rep)
	}
	return reports, nil
}
