package audit

import (
	"cmp"
	"fmt"
	"slices"
	"time"
)

// FileReport is what Verify found in one file.
type FileReport struct {
	Name     string
	Records  int
	FirstSeq uint64 // 0 when the file holds no record
	LastSeq  uint64
	// Unended are the write-ahead records in this file whose request has
	// no outcome record after it: the proxy stopped (was killed, crashed)
	// while the request was in flight.
	Unended []Unended
}

// Unended is a request that was forwarded but whose outcome was never
// recorded.
type Unended struct {
	Seq       uint64
	RequestID string
}

// ChainError is the first line of a log that breaks the chain.
type ChainError struct {
	Name string
	Line int
	Err  error
}

func (e *ChainError) Error() string { return fmt.Sprintf("%s:%d: %v", e.Name, e.Line, e.Err) }

func (e *ChainError) Unwrap() error { return e.Err }

// VerifyOptions are what Verify checks against beyond the lines themselves.
type VerifyOptions struct {
	// Key is the audit key the log was written with; nil checks plain
	// SHA-256 hashes, which prove nothing against someone who can write the
	// file (they can recompute them).
	Key []byte
	// Checkpoint, when set, is the chain's head the Logger recorded: the
	// files must reach that record with that hash, or newest records were
	// cut off.
	Checkpoint *Checkpoint
}

// Verify checks that every line of the files parses as a record carrying the
// hash (with a key: the HMAC) of its own content, and that the records form
// one unbroken chain across the files, taken oldest first (see ChainOrder).
// It returns a report for each file that was checked to its end; a break is
// returned as a *ChainError naming the first bad line.
//
// The chain proves that lines were not edited, deleted, inserted or reordered
// after they were written — against someone without the key only when
// o.Key is given — but not that older files were not dropped: the first
// record may continue a file that was not given. With o.Checkpoint it also
// proves that the newest records, up to the checkpoint, are all there.
func Verify(names []string, o VerifyOptions) ([]FileReport, error) {
	var (
		reports []FileReport
		prev    *link
		reached bool
		last    string
		open    = map[string]Unended{}
		fileOf  = map[string]int{}
	)
	cp := o.Checkpoint
	reached = cp != nil && cp.Seq == 0 // the log was empty when it was recorded
	for _, name := range ChainOrder(names) {
		rep := FileReport{Name: name}
		last = name
		err := eachLine(name, func(no int, line []byte) error {
			r, err := checkLine(line, prev, o.Key)
			if err != nil {
				return &ChainError{Name: name, Line: no, Err: err}
			}
			if cp != nil && r.Seq == cp.Seq {
				if r.Hash != cp.Hash {
					return &ChainError{Name: name, Line: no, Err: fmt.Errorf("seq %d does not match the checkpoint's hash: the log was rewritten from here", r.Seq)}
				}
				reached = true
			}
			if r.Phase == PhaseStart {
				open[r.RequestID] = Unended{Seq: r.Seq, RequestID: r.RequestID}
				fileOf[r.RequestID] = len(reports)
			} else {
				delete(open, r.RequestID)
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
	for id, u := range open {
		reports[fileOf[id]].Unended = append(reports[fileOf[id]].Unended, u)
	}
	for i := range reports {
		slices.SortFunc(reports[i].Unended, func(a, b Unended) int { return cmp.Compare(a.Seq, b.Seq) })
	}
	if cp != nil && !reached {
		end := uint64(0)
		if prev != nil {
			end = prev.seq
		}
		if end < cp.Seq {
			return reports, &ChainError{Name: last, Line: 0, Err: fmt.Errorf("the log ends at seq %d but the checkpoint (%s) records seq %d: the newest %d record(s) were cut off", end, cp.Time.Format(time.RFC3339), cp.Seq, cp.Seq-end)}
		}
		return reports, &ChainError{Name: last, Line: 0, Err: fmt.Errorf("the checkpoint's seq %d is not in the files given (give the file that holds it)", cp.Seq)}
	}
	return reports, nil
}
