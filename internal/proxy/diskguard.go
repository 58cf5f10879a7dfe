package proxy

import (
	"fmt"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"
)

// diskGuard refuses traffic shortly before the audit log's file system is
// full, not after: records are written when exchanges end, so a write that
// fails would leave the requests already in flight unaudited. Free space is
// read at most every checkEvery; below minFree the proxy answers 503.
type diskGuard struct {
	dir        string
	minFree    uint64
	checkEvery time.Duration

	mu      sync.Mutex
	checked time.Time
	low     atomic.Pointer[error]
}

const (
	auditMinFree    = 1 << 20 // room for thousands of records in flight
	auditCheckEvery = 250 * time.Millisecond
)

func newDiskGuard(auditFile string) *diskGuard {
	if auditFile == "" {
		return nil
	}
	return &diskGuard{dir: filepath.Dir(auditFile), minFree: auditMinFree, checkEvery: auditCheckEvery}
}

// err is non-nil while the audit file system is nearly full.
func (g *diskGuard) err() error {
	if g == nil {
		return nil
	}
	g.mu.Lock()
	if time.Since(g.checked) >= g.checkEvery {
		g.checked = time.Now()
		var st unix.Statfs_t
		// A file system that cannot be asked (or a device such as
		// /dev/null) is left to the writes themselves to judge.
		if unix.Statfs(g.dir, &st) == nil && st.Blocks > 0 {
			free := uint64(st.Bavail) * uint64(st.Bsize)
			if free < g.minFree {
				err := fmt.Errorf("the audit log's file system (%s) has %d KiB free, under the %d KiB kept for records in flight", g.dir, free>>10, g.minFree>>10)
				g.low.Store(&err)
			} else {
				g.low.Store(nil)
			}
		}
	}
	g.mu.Unlock()
	if p := g.low.Load(); p != nil {
		return *p
	}
	return nil
}
