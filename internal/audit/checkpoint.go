package audit

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
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
// head in its checkpoint file (and always on Open when there is none yet, and
// on Close). Records written after
// the last checkpoint can be cut from the log without Verify noticing; a
// checkpoint per record would cost a file rename per request.
const CheckpointEvery = 100

// Checkpoint is the chain's head as the Logger last recorded it outside the
// log: Verify with it proves the log still reaches that record, so the
// newest records were not cut off. Seq 0 (with no Hash) is the head of a log
// that was empty when the Logger opened it: it covers no record yet.
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
	l.writeCheckpoint()
}

// checkpointAtOpen gives a log its first checkpoint as soon as it is opened,
// so that the verify command the proxy prints works from the first moment
// (before the first CheckpointEvery records or the first clean stop). It
// never replaces an existing checkpoint: one left by an earlier run may
// record records that were cut off the log while the proxy was stopped, and
// recording the cut log's head instead would hide that cut. The caller owns l.
func (l *Logger) checkpointAtOpen() error {
	if l.opts.Checkpoint == "" {
		return nil
	}
	if _, err := os.Lstat(l.opts.Checkpoint); !errors.Is(err, fs.ErrNotExist) {
		return nil // kept; a file that cannot be read is for verify to report
	}
	l.writeCheckpoint()
	return l.Healthy()
}

// writeCheckpoint records l.last, which may be seq 0 (an empty log).
func (l *Logger) writeCheckpoint() {
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
	if err := json.Unmarshal(b, &c); err != nil || c.Time.IsZero() || (c.Seq == 0) != (c.Hash == "") || (c.Seq != 0 && len(c.Hash) != hashLen) {
		return c, fmt.Errorf("audit: %q is not an audit checkpoint", path)
	}
	return c, nil
}
