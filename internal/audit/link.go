package audit

import (
	"encoding/json"
	"fmt"
)

// link is where a chain stands after one record: what the next must follow.
type link struct {
	seq  uint64
	hash string
}

// checkLine parses one line (without its newline), checks that it carries the
// hash of its own content, and that it follows prev (nil when it is the first
// record seen, which may continue a file that was not given).
func checkLine(line []byte, prev *link, key []byte) (Record, error) {
	var r Record
	if err := json.Unmarshal(line, &r); err != nil {
		return r, fmt.Errorf("not a JSON audit record: %v", err)
	}
	hash, err := lineHash(line, key)
	if err != nil {
		return r, err
	}
	if r.Hash != hash {
		return r, fmt.Errorf(`"hash" appears more than once (the line was edited)`)
	}
	if r.Seq == 0 {
		return r, fmt.Errorf(`record has no "seq"`)
	}
	if prev == nil {
		if r.Seq == 1 && r.Prev != "" {
			return r, fmt.Errorf("first record of a chain (seq 1) names a previous hash")
		}
		if r.Seq > 1 && len(r.Prev) != hashLen {
			return r, fmt.Errorf("seq %d has no valid prev hash", r.Seq)
		}
		return r, nil
	}
	switch {
	case r.Seq == 1 && r.Prev == "":
		return r, fmt.Errorf("a new chain starts here (seq 1) after seq %d: the log was reset or lines of another log were mixed in", prev.seq)
	case r.Seq <= prev.seq:
		return r, fmt.Errorf("seq %d after seq %d: a line was reordered or duplicated", r.Seq, prev.seq)
	case r.Seq != prev.seq+1:
		return r, fmt.Errorf("seq %d after seq %d: %d record(s) missing here (deleted or moved)", r.Seq, prev.seq, r.Seq-prev.seq-1)
	case r.Prev != prev.hash:
		return r, fmt.Errorf("prev does not match the hash of the record before it (a line was replaced)")
	}
	return r, nil
}
