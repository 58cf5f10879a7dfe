package audit

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// sampleRecord is a plausible record for request i.
func sampleRecord(i int) *Record {
	decision, status, reason := "allow", 200, "host on allow list"
	if i%3 == 0 {
		decision, status, reason = "deny", 403, "host on deny list"
	}
	return &Record{
		Time:       time.Date(2026, 11, 26, 17, 0, 0, 0, time.UTC).Add(time.Duration(i) * time.Second),
		RequestID:  fmt.Sprintf("req-%04d", i),
		Client:     "127.0.0.1:40000",
		Mode:       "forward",
		Method:     "GET",
		Scheme:     "http",
		Host:       fmt.Sprintf("host%d.example.com", i%4),
		Port:       80,
		Path:       "/v1/models?api_key=" + Masked,
		Decision:   decision,
		Reason:     reason,
		Status:     status,
		BytesIn:    int64(10 * i),
		BytesOut:   int64(100 * i),
		TTFBMs:     1.25,
		DurationMs: 2.5,
	}
}

// writeLog writes n sample records to a new log file and returns its name.
func writeLog(t *testing.T, n int) string {
	t.Helper()
	name := filepath.Join(t.TempDir(), "audit.jsonl")
	logSamples(t, Options{File: name}, n)
	return name
}

// logSamples opens a logger with opts, writes sample records 1 to n and
// closes it.
func logSamples(t *testing.T, opts Options, n int) {
	t.Helper()
	l, err := Open(opts)
	if err != nil {
		t.Fatal(err)
	}
	writeSamples(t, l, 1, n)
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
}

// writeSamples writes sample records first to last to l.
func writeSamples(t *testing.T, l *Logger, first, last int) {
	t.Helper()
	for i := first; i <= last; i++ {
		if err := l.Write(sampleRecord(i)); err != nil {
			t.Fatal(err)
		}
	}
}

// readLines returns the lines of a file without their newlines.
func readLines(t *testing.T, name string) []string {
	t.Helper()
	b, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	if len(b) == 0 {
		return nil
	}
	if !bytes.HasSuffix(b, []byte("\n")) {
		t.Fatalf("%s does not end with a newline", name)
	}
	return strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")
}

func writeLines(t *testing.T, name string, lines []string) {
	t.Helper()
	if err := os.WriteFile(name, []byte(strings.Join(lines, "\n")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
}
