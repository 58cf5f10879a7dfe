package audit

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// TestRecoveryAfterTheDiskFillsAndIsFreed fills a real (tiny tmpfs) file
// system: writes fail with ENOSPC and the logger is unhealthy; once space is
// freed the next write succeeds, the logger is healthy again, and the file still
// verifies (no torn half-line was left behind).
func TestRecoveryAfterTheDiskFillsAndIsFreed(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to mount a small tmpfs that can fill up")
	}
	dir := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=64k,mode=0700", "tmpfs", dir).CombinedOutput(); err != nil {
		t.Skipf("cannot mount a tmpfs here (needs CAP_SYS_ADMIN): %v: %s", err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", dir).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v: %s", dir, err, out)
		}
	})

	name := filepath.Join(dir, "audit.jsonl")
	l, err := Open(Options{File: name})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	writeSamples(t, l, 1, 3)
	// Leave the log's last page with less room than the record below needs.
	next := 4
	for room := 4096 - fileSize(t, name)%4096; room > 2000 || room == 4096; room = 4096 - fileSize(t, name)%4096 {
		writeSamples(t, l, next, next)
		next++
	}

	filler := filepath.Join(dir, "filler")
	fillDisk(t, filler)
	// No page is free, but the log's last page has room left: the record
	// below (cut to MaxRecordBytes) fills it and stops, the case that could
	// leave a torn line.
	sizeBefore := fileSize(t, name)
	big := sampleRecord(next)
	big.Path = "/" + strings.Repeat("x", 3000)
	if err := l.Write(big); !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("Write on a full disk: %v; want ENOSPC", err)
	}
	if l.Healthy() == nil {
		t.Fatal("Healthy is nil while the disk is full")
	}
	if got := fileSize(t, name); got != sizeBefore {
		t.Fatalf("a failed write left the file at %d bytes, want %d (torn line not taken back)", got, sizeBefore)
	}

	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	if err := l.Write(big); err != nil {
		t.Fatalf("Write after space was freed: %v", err)
	}
	if err := l.Healthy(); err != nil {
		t.Fatalf("Healthy after a successful write: %v", err)
	}
	reps, err := Verify([]string{name}, VerifyOptions{})
	if err != nil || reps[0].Records != next {
		t.Fatalf("after recovery: %+v, %v; want %d chained records", reps, err, next)
	}
}

// fillDisk writes to name until the file system is full.
func fillDisk(t *testing.T, name string) {
	t.Helper()
	f, err := os.Create(name)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	block := make([]byte, 4096)
	for {
		if _, err := f.Write(block); err != nil {
			if !errors.Is(err, syscall.ENOSPC) {
				t.Fatalf("filling the disk: %v", err)
			}
			return
		}
	}
}

func fileSize(t *testing.T, name string) int64 {
	t.Helper()
	st, err := os.Stat(name)
	if err != nil {
		t.Fatal(err)
	}
	return st.Size()
}
