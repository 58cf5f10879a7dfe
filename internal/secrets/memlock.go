package secrets

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// memguard panics (core.Panic) when mlock fails, at any time. So the vault
// works out beforehand how much locked memory it will need and whether the
// process can have it, and does not touch memguard at all when it cannot.

// memguardFixedPages is what memguard locks besides the values: its session
// key (a Coffer of three one-page buffers) and the one-page view of that key
// it makes while sealing or opening an enclave.
const memguardFixedPages = 3 + 1

// lockedPagesNeeded is the most locked memory the vault holds at once: the
// memguard pages, one opened value (values are opened one at a time) and the
// locked slab all values are copied into for NewInjector/NewRedactor.
func lockedPagesNeeded(lengths []int) int {
	largest, total := 0, 0
	for _, n := range lengths {
		largest = max(largest, pagesFor(n))
		total += n
	}
	return memguardFixedPages + largest + pagesFor(total)
}

// memlockState is what decides whether memory can be locked.
type memlockState struct {
	capIPCLock bool   // CAP_IPC_LOCK: the limit does not apply
	limit      uint64 // RLIMIT_MEMLOCK soft limit in bytes
	infinite   bool   // RLIMIT_MEMLOCK is unlimited
	used       uint64 // bytes this process has locked already (VmLck)
}

func readMemlock() (memlockState, error) {
	var st memlockState
	var rl unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_MEMLOCK, &rl); err != nil {
		return st, fmt.Errorf("reading RLIMIT_MEMLOCK: %w", err)
	}
	st.limit = rl.Cur
	st.infinite = rl.Cur == unix.RLIM_INFINITY
	status, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return st, fmt.Errorf("reading /proc/self/status: %w", err)
	}
	sc := bufio.NewScanner(bytes.NewReader(status))
	for sc.Scan() {
		k, v, _ := strings.Cut(sc.Text(), ":")
		v = strings.TrimSpace(v)
		switch k {
		case "CapEff":
			caps, err := strconv.ParseUint(v, 16, 64)
			if err != nil {
				return st, fmt.Errorf("reading CapEff %q in /proc/self/status: %w", v, err)
			}
			st.capIPCLock = caps&(1<<unix.CAP_IPC_LOCK) != 0
		case "VmLck":
			kb, err := strconv.ParseUint(strings.TrimSuffix(v, " kB"), 10, 64)
			if err != nil {
				return st, fmt.Errorf("reading VmLck %q in /proc/self/status: %w", v, err)
			}
			st.used = kb * 1024
		}
	}
	return st, nil
}

// canLock reports whether pages more pages can be locked, and if not, why,
// in a sentence for the operator.
func canLock(pages int) (bool, string) {
	st, err := readMemlock()
	if err != nil {
		return false, "cannot tell whether memory can be locked: " + err.Error()
	}
	need := uint64(pages * pageSize)
	if !st.capIPCLock && !st.infinite && st.used+need > st.limit {
		return false, fmt.Sprintf("memory cannot be locked: RLIMIT_MEMLOCK is %d bytes, %d already locked, the credentials need %d more", st.limit, st.used, need)
	}
	// The numbers say yes; make sure the kernel agrees (a seccomp profile
	// may still forbid mlock).
	probe, err := newSlab(pageSize, true)
	if err != nil {
		return false, "memory cannot be locked: " + err.Error()
	}
	probe.free()
	return true, ""
}
