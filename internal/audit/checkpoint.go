package audit

import (
	"encoding/json"
	"fmt"
	"os"
	"time"

	"github.com/slapenir/slapenir/internal/pki/certfile"
)

// KeyFile and CheckpointFile are the names the proxy gives the audit key and
// the checkpoint in its state directory.
const (
	KeyFile        = "audit.key"
	CheckpointFile = "audit.checkpoint"
)

// CheckpointEvery is how many records apart the Logger records the chain's
// head in its checkpoint file (and always on Close). Records written after
// the last checkpoint can be cut from the log without Verify noticing; a
// checkpoint per record would cost a file rename per request.
const CheckpointEvery = 100

// Checkpoint is the chain's head as the Logger last recorded it outside the
// log: Verify with it proves the log still reaches that record, so the
// newest records were not cut off.
type Checkpoint struct {
	Seq  uint64    `json:"seq"`
	Hash string    `json:"hash"`
	File string    `json:"file"`
	Time time.Time `json:"time"`
}

// checkpoint writes the head to the checkpoint file; a failure is the log's
// failure (Healthy reports it), since the log could then be cut unnoticed.
// The caller holds l.mu.
func (l *Logger) checkpoint() {
	if l.opts.Checkpoint == "" || l.last.seq == 0 {
		return
	}
	b, _ := json.Marshal(Checkpoint{Seq: l.last.seq, Hash: l.last.hash, File: l.opts.File, Time: time.Now().UTC()})
	if err := certfile.WriteAtomic(l.opts.Checkpoint, append(b, '\n'), 0o600); err != nil {
		err = fmt.Errorf("audit: cannot write the audit checkpoint %q: %w", l.opts.Checkpoint, err)
		l.health.Store(&err)
	}
}

// ReadCheckpoint reads a checkpoint file the Logger wrote.
func ReadCheckpoint(path string) (Checkpoint, error) {
	var c Checkpoint
	b, err := os.ReadFile(path)
	if err != nil {
		return c, fmt.Errorf("audit: cannot read checkpoint: %w", err)
	}
	if err := json.Unmarshal(b, &c); err != nil || c.Seq == 0 || len(c.Hash) != hashLen {
		return c, fmt.Errorf("audit: %q is not an audit checkpoint", path)
	}
	return c, nil
}
