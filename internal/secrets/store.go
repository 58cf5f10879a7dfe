package secrets

import (
	"fmt"
	"sync"

	"github.com/awnumar/memguard"
)

// store keeps the values at rest and shows them, all at once and briefly,
// to a function.
type store interface {
	// withValues calls fn with every value, in credential order. The slices
	// are valid only during fn and must not be kept or changed.
	withValues(fn func(values [][]byte) error) error
	// close wipes what this store holds.
	close()
}

// memguard keeps one session key for the whole process and memguard.Purge
// wipes every enclave of every user at once. enclaveMu serialises sealing,
// opening and purging across vaults (so the locked-memory budget checked at
// Open holds when two vaults work at once), and enclaveUsers delays the
// purge until the last vault closes: a vault reloaded with a new
// configuration must not lose its values when the old one closes.
var (
	enclaveMu    sync.Mutex
	enclaveUsers int
)

// enclaveStore keeps each value in a memguard enclave: encrypted in ordinary
// memory under a key kept in locked, guarded pages.
type enclaveStore struct {
	enclaves []*memguard.Enclave
	lengths  []int
}

// sealEnclaves moves values into enclaves; memguard wipes each value slice.
// The caller holds enclaveMu.
func sealEnclaves(values [][]byte) *enclaveStore {
	s := &enclaveStore{}
	for _, v := range values {
		s.lengths = append(s.lengths, len(v))
		s.enclaves = append(s.enclaves, memguard.NewEnclave(v))
	}
	enclaveUsers++
	return s
}

func (s *enclaveStore) withValues(fn func(values [][]byte) error) error {
	if len(s.enclaves) == 0 {
		return fn(nil)
	}
	enclaveMu.Lock()
	defer enclaveMu.Unlock()
	total := 0
	for _, n := range s.lengths {
		total += n
	}
	// One value at a time in a memguard buffer, copied into a locked slab
	// outside the heap: the locked memory needed stays at one value plus
	// the slab, however many credentials there are.
	sl, err := newSlab(total, true)
	if err != nil {
		return fmt.Errorf("secrets: locking memory to open the credentials: %w", err)
	}
	defer sl.free()
	views := make([][]byte, len(s.enclaves))
	off := 0
	for i, e := range s.enclaves {
		lb, err := e.Open()
		if err != nil {
			return fmt.Errorf("secrets: opening the enclave of credential #%d: %w", i+1, err)
		}
		n := copy(sl.mem[off:], lb.Bytes())
		lb.Destroy()
		views[i] = sl.mem[off : off+n : off+n]
		off += n
	}
	return fn(views)
}

func (s *enclaveStore) close() {
	enclaveMu.Lock()
	defer enclaveMu.Unlock()
	s.enclaves = nil
	enclaveUsers--
	if enclaveUsers == 0 {
		// Wipes the session key (every enclave becomes undecryptable) and
		// every locked buffer.
		memguard.Purge()
	}
}

// plainStore is the fallback when memory cannot be locked: the values in one
// slab outside the Go heap, left out of core dumps and inaccessible
// (PROT_NONE) except inside withValues. It may be swapped to disk.
type plainStore struct {
	mu      sync.Mutex
	sl      *slab
	lengths []int
}

// newPlainStore copies values into a slab and wipes them.
func newPlainStore(values [][]byte) (*plainStore, error) {
	total := 0
	for _, v := range values {
		total += len(v)
	}
	sl, err := newSlab(total, false)
	if err != nil {
		return nil, fmt.Errorf("secrets: memory for the credentials: %w", err)
	}
	s := &plainStore{sl: sl}
	off := 0
	for _, v := range values {
		off += copy(sl.mem[off:], v)
		s.lengths = append(s.lengths, len(v))
		clear(v)
	}
	if err := sl.protect(false); err != nil {
		sl.free()
		return nil, err
	}
	return s, nil
}

func (s *plainStore) withValues(fn func(values [][]byte) error) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.sl.protect(true); err != nil {
		return err
	}
	views := make([][]byte, len(s.lengths))
	off := 0
	for i, n := range s.lengths {
		views[i] = s.sl.mem[off : off+n : off+n]
		off += n
	}
	err := fn(views)
	if perr := s.sl.protect(false); err == nil {
		err = perr
	}
	return err
}

func (s *plainStore) close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.sl.free()
}
