package audit

import (
	"bytes"
	"strings"
	"testing"
)

// FuzzSealedLinesVerify: whatever a record holds (control characters, invalid
// UTF-8, quotes, text that looks like a "hash" field), the line Write produces
// verifies, chains to its predecessor, and fails to verify once any byte of it
// changes.
func FuzzSealedLinesVerify(f *testing.F) {
	f.Add("example.com", "/p?q=1", `,"hash":"`, 3)
	f.Add("\xff\x00", "\u2028", `"}`, 0)
	f.Fuzz(func(t *testing.T, host, path, reason string, flip int) {
		r := sampleRecord(1)
		r.Host, r.Path, r.Reason = host, path, reason
		body, err := encodeBody(r)
		if err != nil {
			t.Fatal(err)
		}
		prev := link{seq: 41, hash: string(bytes.Repeat([]byte("a"), hashLen))}
		line, hash := seal(body, 42, prev.hash, newSum(nil))
		line = bytes.TrimSuffix(line, []byte("\n"))
		if bytes.IndexByte(line, '\n') >= 0 {
			t.Fatalf("sealed line contains a newline: %q", line)
		}
		got, err := checkLine(line, &prev, nil)
		if err != nil {
			t.Fatalf("sealed line does not verify: %v\n%s", err, line)
		}
		if got.Hash != hash || got.Seq != 42 || got.Prev != prev.hash {
			t.Fatalf("read back seq %d prev %q hash %q; want 42, %q, %q", got.Seq, got.Prev, got.Hash, prev.hash, hash)
		}
		if flip < 0 {
			flip = -flip
		}
		i := flip % len(line)
		edited := append([]byte(nil), line...)
		edited[i] ^= 0x01
		if _, err := checkLine(edited, &prev, nil); err == nil {
			t.Fatalf("line with byte %d changed still verifies:\n%s", i, edited)
		}
	})
}

// TestRecordsAreBounded: however long the fields a client controls, a line
// fits MaxRecordBytes (so room for the records in flight can be reserved),
// keeps its chain, and says it was cut.
func TestRecordsAreBounded(t *testing.T) {
	r := sampleRecord(1)
	r.Path = "/" + strings.Repeat("<\"é", 20000)
	r.Error = strings.Repeat("x", 50000)
	r.Method = strings.Repeat("M", 5000)
	body, err := encodeBody(r)
	if err != nil {
		t.Fatal(err)
	}
	line, _ := seal(body, 1<<40, strings.Repeat("a", hashLen), newSum(nil))
	if len(line) > MaxRecordBytes {
		t.Fatalf("a line of %d bytes, want at most %d", len(line), MaxRecordBytes)
	}
	got, err := checkLine(line[:len(line)-1], nil, nil)
	if err != nil || !strings.HasSuffix(got.Path, "…") || !strings.HasPrefix(got.Path, "/<\"é") {
		t.Fatalf("bounded line: %v %q", err, got.Path)
	}
}
