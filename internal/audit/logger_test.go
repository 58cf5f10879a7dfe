package audit

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/slapenir/slapenir/internal/testutil/syncbuf"
)

func TestConcurrentWritersProduceWholeLinesAndOneChain(t *testing.T) {
	name := filepath.Join(t.TempDir(), "audit.jsonl")
	var stdout syncbuf.Buffer
	l, err := Open(Options{File: name, Stdout: &stdout})
	if err != nil {
		t.Fatal(err)
	}
	const writers, each = 8, 100
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			for i := range each {
				r := sampleRecord(w*each + i)
				// Long values make a torn or interleaved line visible.
				r.Path = "/" + strings.Repeat(string(rune('a'+w)), 2000)
				if err := l.Write(r); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}

	lines := readLines(t, name)
	if len(lines) != writers*each {
		t.Fatalf("file has %d lines, want %d", len(lines), writers*each)
	}
	ids := map[string]bool{}
	for i, line := range lines {
		var r Record
		if err := json.Unmarshal([]byte(line), &r); err != nil {
			t.Fatalf("line %d is not one whole JSON object: %v", i+1, err)
		}
		if r.Seq != uint64(i+1) {
			t.Fatalf("line %d has seq %d", i+1, r.Seq)
		}
		if strings.Trim(r.Path[1:], r.Path[1:2]) != "" {
			t.Fatalf("line %d mixes two writers' paths", i+1)
		}
		ids[r.RequestID] = true
	}
	if len(ids) != writers*each {
		t.Fatalf("%d distinct request ids, want %d", len(ids), writers*each)
	}
	if got := stdout.String(); got != strings.Join(lines, "\n")+"\n" {
		t.Fatalf("stdout holds %d bytes that differ from the file's", len(got))
	}
	if _, err := Verify([]string{name}, VerifyOptions{}); err != nil {
		t.Fatalf("verify: %v", err)
	}
}

func TestOpenCreatesPrivateDirectoryAndFile(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "logs", "proxy")
	name := filepath.Join(dir, "audit.jsonl")
	l, err := Open(Options{File: name})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	for path, want := range map[string]os.FileMode{dir: 0o700 | os.ModeDir, name: 0o600} {
		st, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if st.Mode() != want {
			t.Errorf("%s has mode %v, want %v", path, st.Mode(), want)
		}
	}
}

func TestOpenFailsClearlyWhenTheDirectoryCannotBeCreated(t *testing.T) {
	blocker := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(blocker, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := Open(Options{File: filepath.Join(blocker, "audit.jsonl")})
	if err == nil || !strings.Contains(err.Error(), blocker) || !strings.Contains(err.Error(), "audit.file") {
		t.Fatalf("Open under a regular file: %v; want an error naming the path and the audit.file setting", err)
	}
}

func TestWriteIsInTheFileWhenItReturns(t *testing.T) {
	name := filepath.Join(t.TempDir(), "audit.jsonl")
	l, err := Open(Options{File: name})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	for i := 1; i <= 3; i++ {
		if err := l.Write(sampleRecord(i)); err != nil {
			t.Fatal(err)
		}
		// Read through another descriptor, with the logger still open: a
		// user-space buffer would hide the line.
		if lines := readLines(t, name); len(lines) != i {
			t.Fatalf("after %d writes the file has %d lines", i, len(lines))
		}
	}
}

func TestOpenContinuesTheChainOfAnExistingFile(t *testing.T) {
	name := writeLog(t, 3)
	l, err := Open(Options{File: name})
	if err != nil {
		t.Fatal(err)
	}
	writeSamples(t, l, 4, 5)
	l.Close()
	reps, err := Verify([]string{name}, VerifyOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if reps[0].Records != 5 || reps[0].LastSeq != 5 {
		t.Fatalf("after reopening: %+v, want 5 records ending at seq 5", reps[0])
	}
}

func TestOpenRefusesToContinueAFileWithATornLastLine(t *testing.T) {
	name := writeLog(t, 2)
	f, err := os.OpenFile(name, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString(`{"seq":3,"time":"2026-`)
	f.Close()
	_, err = Open(Options{File: name})
	if err == nil || !strings.Contains(err.Error(), "incomplete") || !strings.Contains(err.Error(), name) {
		t.Fatalf("Open on a torn file: %v; want an error saying its last line is incomplete", err)
	}
}

func TestWriteToAFullDeviceFailsAndMarksTheLoggerUnhealthy(t *testing.T) {
	l, err := Open(Options{File: "/dev/full"})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if err := l.Healthy(); err != nil {
		t.Fatalf("healthy before any write: %v", err)
	}
	err = l.Write(sampleRecord(1))
	if !errors.Is(err, syscall.ENOSPC) || !strings.Contains(err.Error(), "/dev/full") {
		t.Fatalf("Write to /dev/full: %v; want ENOSPC naming the file", err)
	}
	if h := l.Healthy(); h == nil || h.Error() != err.Error() {
		t.Fatalf("Healthy after a failed write: %v; want %v", h, err)
	}
}

func TestAFailingStdoutMarksTheLoggerUnhealthyButKeepsTheFileChain(t *testing.T) {
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	r.Close() // writes to w now fail with EPIPE
	defer w.Close()
	name := filepath.Join(t.TempDir(), "audit.jsonl")
	l, err := Open(Options{File: name, Stdout: w})
	if err != nil {
		t.Fatal(err)
	}
	for i := 1; i <= 2; i++ {
		if err := l.Write(sampleRecord(i)); !errors.Is(err, syscall.EPIPE) {
			t.Fatalf("Write with a broken stdout: %v; want EPIPE", err)
		}
	}
	if l.Healthy() == nil {
		t.Fatal("Healthy is nil after stdout failed")
	}
	l.Close()
	if reps, err := Verify([]string{name}, VerifyOptions{}); err != nil || reps[0].Records != 2 {
		t.Fatalf("the file should hold 2 chained records: %+v, %v", reps, err)
	}
}

func TestWriteAfterCloseFails(t *testing.T) {
	l, err := Open(Options{File: filepath.Join(t.TempDir(), "a.jsonl")})
	if err != nil {
		t.Fatal(err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if err := l.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if err := l.Write(sampleRecord(1)); !errors.Is(err, ErrClosed) {
		t.Fatalf("Write after Close: %v, want ErrClosed", err)
	}
}

func TestWriteFillsAZeroTimeWithoutChangingTheCallersRecord(t *testing.T) {
	var out syncbuf.Buffer
	l, err := Open(Options{Stdout: &out})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	r := sampleRecord(1)
	r.Time = time.Time{}
	before := time.Now()
	if err := l.Write(r); err != nil {
		t.Fatal(err)
	}
	if !r.Time.IsZero() {
		t.Fatalf("Write changed the caller's record: time %v", r.Time)
	}
	var got Record
	if err := json.Unmarshal([]byte(out.String()), &got); err != nil {
		t.Fatal(err)
	}
	if got.Time.Before(before.Add(-time.Second)) {
		t.Fatalf("written time %v, want about %v", got.Time, before)
	}
}

func TestOpenContinuesAfterALastLineLongerThanOneReadChunk(t *testing.T) {
	name := filepath.Join(t.TempDir(), "audit.jsonl")
	l, err := Open(Options{File: name})
	if err != nil {
		t.Fatal(err)
	}
	for i, pathLen := range []int{10, 200_000} {
		r := sampleRecord(i + 1)
		r.Path = "/" + strings.Repeat("p", pathLen)
		if err := l.Write(r); err != nil {
			t.Fatal(err)
		}
	}
	l.Close()
	l, err = Open(Options{File: name})
	if err != nil {
		t.Fatal(err)
	}
	if err := l.Write(sampleRecord(3)); err != nil {
		t.Fatal(err)
	}
	l.Close()
	if reps, err := Verify([]string{name}, VerifyOptions{}); err != nil || reps[0].LastSeq != 3 {
		t.Fatalf("%+v, %v; want 3 chained records", reps, err)
	}
}
