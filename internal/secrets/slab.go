package secrets

import (
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

var pageSize = os.Getpagesize()

// slab is memory for values outside the Go heap: the garbage collector never
// copies it, core dumps leave it out (MADV_DONTDUMP), it can be locked
// against swapping, and free wipes it before giving it back.
type slab struct {
	mem    []byte
	locked bool
}

func pagesFor(n int) int { return max(1, (n+pageSize-1)/pageSize) }

// newSlab maps at least n bytes, locked when lock is true. A failed lock is
// an error, never a panic: the caller decided beforehand that it should fit.
func newSlab(n int, lock bool) (*slab, error) {
	mem, err := unix.Mmap(-1, 0, pagesFor(n)*pageSize, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS)
	if err != nil {
		return nil, fmt.Errorf("mapping %d bytes: %w", n, err)
	}
	// Best effort: a kernel without MADV_DONTDUMP still works, only with
	// the values in a core dump (which memguard disables anyway).
	_ = unix.Madvise(mem, unix.MADV_DONTDUMP)
	s := &slab{mem: mem}
	if lock {
		if err := unix.Mlock(mem); err != nil {
			s.free()
			return nil, fmt.Errorf("mlock of %d bytes: %w", len(mem), err)
		}
		s.locked = true
	}
	return s, nil
}

// protect makes the slab readable (for reading values) or inaccessible (at
// rest), so a stray read of these pages faults instead of leaking.
func (s *slab) protect(readable bool) error {
	prot := unix.PROT_NONE
	if readable {
		prot = unix.PROT_READ
	}
	if err := unix.Mprotect(s.mem, prot); err != nil {
		return fmt.Errorf("secrets: mprotect of the credential memory: %w", err)
	}
	return nil
}

// free wipes and unmaps the slab. It is safe to call twice.
func (s *slab) free() {
	if s.mem == nil {
		return
	}
	// Writable again so it can be wiped; if even that fails the pages are
	// unmapped unwiped, which returns them to the kernel (which zeroes
	// pages before reuse).
	if unix.Mprotect(s.mem, unix.PROT_READ|unix.PROT_WRITE) == nil {
		clear(s.mem)
	}
	if s.locked {
		_ = unix.Munlock(s.mem)
	}
	_ = unix.Munmap(s.mem)
	s.mem = nil
}
