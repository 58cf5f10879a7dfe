package audit

import (
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"
)

// Options says where a Logger writes. With neither File nor Stdout, Write
// accepts records and keeps none.
type Options struct {
	File       string    // "" = no file
	Stdout     io.Writer // nil = none (the proxy passes os.Stdout when audit.stdout is true)
	MaxBytes   int64     // rotate when the file would exceed this; 0 = never
	MaxBackups int       // rotated files kept: File.1 (newest) … File.N
	// Key, when set (KeyLen bytes), makes every line's hash an HMAC under
	// it, so that the log cannot be rewritten by someone without the key.
	// Keep it away from the log's directory (the proxy keeps it in its
	// state directory).
	Key []byte
	// Checkpoint, when set, is a file (outside the log's directory) where
	// the Logger records the chain's head every CheckpointEvery records
	// and on Close (and on Open when the file does not exist yet), so that
	// Verify can tell that newest records were cut.
	Checkpoint string
}

// ErrClosed is returned by Write after Close.
var ErrClosed = errors.New("audit: log is closed")

// Logger appends Records to the audit log. It is safe for concurrent use.
type Logger struct {
	opts Options

	mu      sync.Mutex // serialises the chain and the file
	f       *os.File   // nil when there is no file, or after a failed reopen
	regular bool       // f is a regular file: rotate it, and truncate torn writes
	size    int64
	last    link // the chain so far; seq 0 = nothing written yet
	closed  bool
	sum     hash.Hash // newSum(opts.Key), reused under mu

	health atomic.Pointer[error] // nil = the last write succeeded
	// written counts the bytes put in the file, so that a guard of the
	// file system's free space can account for them between its polls.
	written atomic.Int64
}

// Written is how many bytes the Logger has written to its file so far.
func (l *Logger) Written() int64 { return l.written.Load() }

// Open prepares the audit log: it creates the file's directory (0700) and the file
// (0600, appending), and continues the hash chain of what the file (or its newest
// backup) already holds.
func Open(o Options) (*Logger, error) {
	if o.MaxBytes < 0 || o.MaxBackups < 0 {
		return nil, fmt.Errorf("audit: max bytes (%d) and max backups (%d) must not be negative", o.MaxBytes, o.MaxBackups)
	}
	l := &Logger{opts: o, sum: newSum(o.Key)}
	if o.File == "" {
		return l, nil
	}
	if err := l.openFile(); err != nil {
		return nil, err
	}
	if o.Key != nil && len(o.Key) != KeyLen {
		return nil, fmt.Errorf("audit: the audit key is %d bytes, want %d", len(o.Key), KeyLen)
	}
	prev, err := resumeChain(o.File, o.Key)
	if err != nil {
		l.f.Close()
		return nil, err
	}
	if prev != nil {
		l.last = *prev
	}
	if err := l.checkpointAtOpen(); err != nil {
		l.f.Close()
		return nil, err
	}
	return l, nil
}

func (l *Logger) openFile() error {
	name := l.opts.File
	if err := os.MkdirAll(filepath.Dir(name), 0o700); err != nil {
		return fmt.Errorf("audit: cannot create the directory of audit file %q: %w (create it, or set audit.file to a writable path)", name, err)
	}
	f, err := os.OpenFile(name, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return fmt.Errorf("audit: cannot open audit file %q: %w (check its permissions, or set audit.file to a writable path)", name, err)
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return fmt.Errorf("audit: cannot stat audit file %q: %w", name, err)
	}
	l.f, l.regular, l.size = f, st.Mode().IsRegular(), st.Size()
	return nil
}

// Write appends r as one JSON line, with the next seq and the hash chain, to the
// file and to Stdout. The line is in the operating system (one write system call,
// nothing buffered here) when Write returns, so a crash of the process loses
// nothing. A zero r.Time is set to now. A failure makes Healthy report it until a
// later Write succeeds; a failed record does not take a place in the chain.
func (l *Logger) Write(r *Record) error {
	if r.Time.IsZero() {
		c := *r
		c.Time = time.Now()
		r = &c
	}
	body, err := encodeBody(r)
	if err != nil {
		err = fmt.Errorf("audit: cannot encode the record of request %q: %w", r.RequestID, err)
		l.health.Store(&err)
		return err
	}

	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return ErrClosed
	}
	line, hash := seal(body, l.last.seq+1, l.last.hash, l.sum)
	written, err := l.writeLine(line)
	if written {
		l.last = link{seq: l.last.seq + 1, hash: hash}
		if l.last.seq%CheckpointEvery == 0 {
			l.checkpoint()
		}
	}
	if err != nil {
		l.health.Store(&err)
		return err
	}
	l.health.Store(nil)
	return nil
}

// writeLine puts one sealed line in the file (rotating first when it would grow
// past MaxBytes), then on Stdout. written reports whether the line reached any
// destination, and so took its place in the chain. The caller holds l.mu.
func (l *Logger) writeLine(line []byte) (written bool, err error) {
	if l.opts.File != "" {
		if l.f == nil {
			// A rotation failed half-way; try again to get a file to write to.
			if err := l.openFile(); err != nil {
				return false, err
			}
		}
		if l.regular && l.opts.MaxBytes > 0 && l.size > 0 && l.size+int64(len(line)) > l.opts.MaxBytes {
			if err := l.rotate(); err != nil {
				return false, err
			}
		}
		n, err := l.f.Write(line)
		if err != nil {
			if n > 0 && l.regular {
				// Take back the torn half-line so the next record starts a line
				// of its own and the file still verifies.
				_ = l.f.Truncate(l.size)
			}
			return false, fmt.Errorf("audit: cannot write to audit file %q: %w (free space or fix permissions; requests are refused until it can be written)", l.opts.File, err)
		}
		l.size += int64(n)
		l.written.Add(int64(n))
		written = true
	}
	if l.opts.Stdout != nil {
		if _, err := l.opts.Stdout.Write(line); err != nil {
			return written, fmt.Errorf("audit: cannot write the audit log to stdout: %w", err)
		}
		written = true
	}
	return written, nil
}

// Healthy reports why the last Write failed, or nil when it succeeded (or none
// was made yet). The proxy calls it before each request and refuses with 503
// rather than proxying unaudited. It changes only with Write, so the proxy should
// still Write the record of each such refusal: the first that succeeds makes the
// logger healthy again.
func (l *Logger) Healthy() error {
	if p := l.health.Load(); p != nil {
		return *p
	}
	return nil
}

// Close syncs the file to disk and closes it. Writes after Close fail with
// ErrClosed; Close is safe to call more than once.
func (l *Logger) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return nil
	}
	l.closed = true
	l.checkpoint()
	if l.f == nil {
		return nil
	}
	var syncErr error
	if l.regular {
		syncErr = l.f.Sync()
	}
	closeErr := l.f.Close()
	l.f = nil
	if err := errors.Join(syncErr, closeErr); err != nil {
		return fmt.Errorf("audit: cannot flush audit file %q: %w", l.opts.File, err)
	}
	return nil
}
