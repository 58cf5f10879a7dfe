package proxy

import (
	"context"
	"fmt"
	"sync"
	"time"
)

// Decoding memory across responses: every decoded response holds its
// decoders' worst case (decodedBody's charge) from its head to its end.
const (
	// decodeMemory is what all responses' decoders may hold at once:
	// about 28 zstd or 15 full-window br responses, or thousands of gzip.
	decodeMemory = 256 << 20
	// decodeMemoryPerClient is one client's share, so that one agent's
	// bombs leave room for everyone else's decoding.
	decodeMemoryPerClient = 64 << 20
	// decodeWait is how long a response waits for room before it is
	// refused. Compressed responses are rare here (the proxy asks every
	// upstream for identity when it scans), so a budget that stays full is
	// a flood, not a burst: waiting longer would only hold the upstream's
	// connection and a goroutine open for it.
	decodeWait = 2 * time.Second
)

// decodeBudget is a weighted semaphore over decoding memory, with a share
// per client. Its zero value has no room; newDecodeBudget makes one.
type decodeBudget struct {
	total, perClient int64
	mu               sync.Mutex
	used             int64
	byClient         map[string]int64
	// freed is closed, and replaced, whenever memory is given back: the
	// waiters then look again.
	freed chan struct{}
}

func newDecodeBudget(total, perClient int64) *decodeBudget {
	return &decodeBudget{total: total, perClient: perClient, byClient: map[string]int64{}, freed: make(chan struct{})}
}

// errDecodeBusy is a response refused because decoding memory stayed
// exhausted for decodeWait: answered 503 with Retry-After, since the same
// request may well pass a moment later.
type errDecodeBusy struct{ need, perClient, total int64 }

func (e errDecodeBusy) Error() string {
	return fmt.Sprintf("the upstream's compressed response needs %d MiB to decode and the proxy's decoding memory (%d MiB per client, %d MiB in all) stayed in use for %s; retry later",
		(e.need+1<<20-1)>>20, e.perClient>>20, e.total>>20, decodeWait)
}

// acquire takes n bytes for client, waiting at most decodeWait (or until
// ctx ends) for room; the returned func gives them back.
func (b *decodeBudget) acquire(ctx context.Context, client string, n int64) (func(), error) {
	// The timer is made only when there is no room at once: most
	// responses never wait.
	var timeout <-chan time.Time
	for {
		b.mu.Lock()
		if b.used+n <= b.total && b.byClient[client]+n <= b.perClient {
			b.used += n
			b.byClient[client] += n
			b.mu.Unlock()
			// decodedReader.Close, its one caller, calls it once.
			return func() { b.give(client, n) }, nil
		}
		freed := b.freed
		b.mu.Unlock()
		if timeout == nil {
			t := time.NewTimer(decodeWait)
			defer t.Stop()
			timeout = t.C
		}
		select {
		case <-freed:
		case <-timeout:
			return nil, errDecodeBusy{need: n, perClient: b.perClient, total: b.total}
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

func (b *decodeBudget) give(client string, n int64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.used -= n
	if b.byClient[client] -= n; b.byClient[client] == 0 {
		delete(b.byClient, client)
	}
	close(b.freed)
	b.freed = make(chan struct{})
}

// inUse is the memory granted now, for tests and metrics.
func (b *decodeBudget) inUse() int64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.used
}
