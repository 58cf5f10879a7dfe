package proxy

import (
	"fmt"
	"path/filepath"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/slapenir/slapenir/internal/audit"
)

// diskGuard keeps the audit log's file system from filling up under the
// requests in flight: every admitted exchange reserves room for its two
// records (the write-ahead one and its outcome, each at most
// audit.MaxRecordBytes), and a new exchange is refused while the free space,
// less what is reserved, would drop under minFree. Free space is read from
// the file system at most every checkEvery and, between reads, lowered by
// every byte the audit log writes, so many clients at once cannot overrun
// the check. minFree itself is left for the records of refusals (each also
// at most audit.MaxRecordBytes).
type diskGuard struct {
	dir        string
	minFree    int64
	checkEvery time.Duration
	written    func() int64 // bytes the audit log has written so far

	mu          sync.Mutex
	checked     time.Time
	known       bool  // the file system could be asked
	freeAtCheck int64 // free bytes when last asked
	writtenThen int64 // written() when last asked
	reserved    int64 // room promised to exchanges in flight
}

const (
	auditMinFree    = 1 << 20 // room for the records of ~250 refusals
	auditCheckEvery = 250 * time.Millisecond
	// exchangeReserve is what one exchange's records can take.
	exchangeReserve = 2 * audit.MaxRecordBytes
)

func newDiskGuard(auditFile string, written func() int64) *diskGuard {
	if auditFile == "" {
		return nil
	}
	return &diskGuard{dir: filepath.Dir(auditFile), minFree: auditMinFree, checkEvery: auditCheckEvery, written: written}
}

// free is the file system's free space now, as best known: asked of the
// file system every checkEvery, and at every call once it runs low (others
// may be filling it too), lowered in between by what the log wrote. The
// caller holds g.mu.
func (g *diskGuard) free() int64 {
	est := g.freeAtCheck - (g.written() - g.writtenThen)
	if time.Since(g.checked) >= g.checkEvery || g.known && est < auditLowWater {
		g.checked = time.Now()
		var st unix.Statfs_t
		// A file system that cannot be asked (or a device such as
		// /dev/null) is left to the writes themselves to judge.
		g.known = unix.Statfs(g.dir, &st) == nil && st.Blocks > 0
		if g.known {
			g.freeAtCheck = int64(st.Bavail) * int64(st.Bsize)
			g.writtenThen = g.written()
		}
	}
	return g.freeAtCheck - (g.written() - g.writtenThen)
}

// auditLowWater is the free space under which every admission asks the
// file system (a statfs, about a microsecond) instead of trusting the last
// answer.
const auditLowWater = 16 << 20

// reserve promises an exchange room for its records, or says why there is
// none; release gives the room back once its last record is written.
func (g *diskGuard) reserve() (release func(), err error) {
	if g == nil {
		return func() {}, nil
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if err := g.short(); err != nil {
		return nil, err
	}
	g.reserved += exchangeReserve
	var once sync.Once
	return func() {
		once.Do(func() {
			g.mu.Lock()
			g.reserved -= exchangeReserve
			g.mu.Unlock()
		})
	}, nil
}

// short says why one more exchange could not be given room now, or nil.
// The caller holds g.mu.
func (g *diskGuard) short() error {
	free := g.free()
	if g.known && free-g.reserved-exchangeReserve < g.minFree {
		return fmt.Errorf("the audit log's file system (%s) has %d KiB free, %d KiB of it promised to the records of requests in flight, and %d KiB is kept for refusals", g.dir, max(free, 0)>>10, g.reserved>>10, g.minFree>>10)
	}
	return nil
}

// err is why new requests are refused now for lack of audit room, or nil.
func (g *diskGuard) err() error {
	if g == nil {
		return nil
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.short()
}
