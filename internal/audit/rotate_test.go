package audit

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
)

func TestRotationKeepsSizesBackupsAndTheChain(t *testing.T) {
	name := filepath.Join(t.TempDir(), "audit.jsonl")
	const maxBytes = 4000
	const n = 60
	logSamples(t, Options{File: name, MaxBytes: maxBytes, MaxBackups: 2}, n)

	for _, f := range []string{name, name + ".1", name + ".2"} {
		st, err := os.Stat(f)
		if err != nil {
			t.Fatalf("after rotating: %v", err)
		}
		if st.Size() == 0 || st.Size() > maxBytes {
			t.Errorf("%s has %d bytes, want 1..%d", f, st.Size(), maxBytes)
		}
	}
	if _, err := os.Stat(name + ".3"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("%s.3 exists with MaxBackups 2 (err %v)", name, err)
	}

	// Given newest first, as a shell glob lists them: verify orders them.
	reps, err := Verify([]string{name, name + ".1", name + ".2"}, VerifyOptions{})
	if err != nil {
		t.Fatalf("verify across rotated files: %v", err)
	}
	if len(reps) != 3 || reps[0].Name != name+".2" || reps[2].Name != name {
		t.Fatalf("verify order: %+v, want oldest backup first", reps)
	}
	if reps[2].LastSeq != n {
		t.Errorf("last seq %d, want %d", reps[2].LastSeq, n)
	}
	for i := 1; i < 3; i++ {
		if reps[i].FirstSeq != reps[i-1].LastSeq+1 {
			t.Errorf("%s starts at seq %d but %s ends at %d", reps[i].Name, reps[i].FirstSeq, reps[i-1].Name, reps[i-1].LastSeq)
		}
	}
	// The first record of each newer file chains to the last of the older one.
	for i := 1; i < 3; i++ {
		older, newer := readLines(t, reps[i-1].Name), readLines(t, reps[i].Name)
		last, _ := checkLine([]byte(older[len(older)-1]), nil, nil)
		first, _ := checkLine([]byte(newer[0]), nil, nil)
		if first.Prev != last.Hash {
			t.Errorf("%s does not chain to %s", reps[i].Name, reps[i-1].Name)
		}
	}
}

func TestRotationWithoutBackupsKeepsOnlyTheCurrentFile(t *testing.T) {
	dir := t.TempDir()
	name := filepath.Join(dir, "audit.jsonl")
	logSamples(t, Options{File: name, MaxBytes: 1500}, 20)
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Fatalf("dir holds %d files, want only %s", len(entries), name)
	}
	reps, err := Verify([]string{name}, VerifyOptions{})
	if err != nil || reps[0].LastSeq != 20 || reps[0].FirstSeq == 1 {
		t.Fatalf("current file: %+v, %v; want a chain continuing to seq 20", reps, err)
	}
}

func TestARecordLargerThanMaxBytesGetsAFileOfItsOwn(t *testing.T) {
	name := filepath.Join(t.TempDir(), "audit.jsonl")
	logSamples(t, Options{File: name, MaxBytes: 100, MaxBackups: 5}, 3)
	for _, f := range []string{name, name + ".1", name + ".2"} {
		if lines := readLines(t, f); len(lines) != 1 {
			t.Errorf("%s has %d lines, want 1", f, len(lines))
		}
	}
}

func TestOpenAfterARotationContinuesFromTheNewestBackup(t *testing.T) {
	name := writeLog(t, 4)
	// As left by a crash between renaming the file and writing to the new one.
	if err := os.Rename(name, name+".1"); err != nil {
		t.Fatal(err)
	}
	l, err := Open(Options{File: name, MaxBytes: 1 << 20, MaxBackups: 3})
	if err != nil {
		t.Fatal(err)
	}
	if err := l.Write(sampleRecord(5)); err != nil {
		t.Fatal(err)
	}
	l.Close()
	reps, err := Verify([]string{name + ".1", name}, VerifyOptions{})
	if err != nil || reps[1].FirstSeq != 5 {
		t.Fatalf("after reopening: %+v, %v; want the new file to continue at seq 5", reps, err)
	}
}

func TestAFailedRotationIsReportedAndRetried(t *testing.T) {
	name := filepath.Join(t.TempDir(), "audit.jsonl")
	l, err := Open(Options{File: name, MaxBytes: 700, MaxBackups: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if err := l.Write(sampleRecord(1)); err != nil {
		t.Fatal(err)
	}
	// A non-empty directory where the oldest backup goes cannot be removed,
	// even by root.
	blocker := filepath.Join(name+".1", "x")
	if err := os.MkdirAll(blocker, 0o700); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if err := l.Write(sampleRecord(2)); err == nil || l.Healthy() == nil {
			t.Fatalf("Write while rotation is blocked: %v, healthy %v; want an error", err, l.Healthy())
		}
	}
	if err := os.RemoveAll(name + ".1"); err != nil {
		t.Fatal(err)
	}
	if err := l.Write(sampleRecord(2)); err != nil || l.Healthy() != nil {
		t.Fatalf("Write once rotation can proceed: %v, healthy %v", err, l.Healthy())
	}
	reps, err := Verify([]string{name, name + ".1"}, VerifyOptions{})
	if err != nil || reps[0].Records != 1 || reps[1].Records != 1 || reps[1].LastSeq != 2 {
		t.Fatalf("after the retried rotation: %+v, %v; want seq 1 in the backup, seq 2 in the file", reps, err)
	}
}

func TestLogFilesListsExistingFilesOldestFirst(t *testing.T) {
	name := filepath.Join(t.TempDir(), "audit.jsonl")
	logSamples(t, Options{File: name, MaxBytes: 600, MaxBackups: 5}, 3)
	got := LogFiles(name, 5)
	want := []string{name + ".2", name + ".1", name}
	if len(got) != len(want) {
		t.Fatalf("LogFiles = %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("LogFiles = %v, want %v", got, want)
		}
	}
}
