package audit

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
)

// rotate shifts File → File.1 → … → File.MaxBackups (dropping the oldest) and
// opens a new, empty File. The chain goes on: the next record's prev is the hash
// of the last record now in File.1. The caller holds l.mu.
func (l *Logger) rotate() error {
	name := l.opts.File
	if err := l.f.Close(); err != nil {
		l.f = nil
		return fmt.Errorf("audit: cannot close %q to rotate it: %w", name, err)
	}
	l.f = nil
	if l.opts.MaxBackups == 0 {
		if err := os.Remove(name); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("audit: cannot remove %q to rotate it: %w", name, err)
		}
	} else {
		oldest := backupName(name, l.opts.MaxBackups)
		if err := os.Remove(oldest); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("audit: cannot remove the oldest backup %q: %w", oldest, err)
		}
		for i := l.opts.MaxBackups - 1; i >= 0; i-- {
			from, to := backupName(name, i), backupName(name, i+1)
			if err := os.Rename(from, to); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return fmt.Errorf("audit: cannot rename %q to %q: %w", from, to, err)
			}
		}
	}
	return l.openFile()
}

// backupName is File.i, and File itself for i == 0.
func backupName(name string, i int) string {
	if i == 0 {
		return name
	}
	return fmt.Sprintf("%s.%d", name, i)
}
