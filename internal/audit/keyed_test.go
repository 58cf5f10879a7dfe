package audit

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func testKey(t *testing.T) []byte {
	t.Helper()
	k := make([]byte, KeyLen)
	if _, err := rand.Read(k); err != nil {
		t.Fatal(err)
	}
	return k
}

// rewriteLikeAnAttacker does what the 15-line script did to the unkeyed
// chain: change a record's client, delete a record, renumber the rest and
// recompute every prev and hash (with SHA-256, or an HMAC under a key of the
// attacker's own), so that every line links to the one before.
func rewriteLikeAnAttacker(t *testing.T, lines []string, key []byte) []string {
	t.Helper()
	var recs []Record
	for i, l := range lines {
		if i == 2 {
			continue // deleted
		}
		var r Record
		if err := json.Unmarshal([]byte(l), &r); err != nil {
			t.Fatal(err)
		}
		if i == 1 {
			r.Client = "10.9.9.9:1234"
		}
		recs = append(recs, r)
	}
	var out []string
	prev := ""
	for i := range recs {
		body, err := encodeBody(&recs[i])
		if err != nil {
			t.Fatal(err)
		}
		line, h := seal(body, uint64(i+1), prev, newSum(key))
		out = append(out, strings.TrimSuffix(string(line), "\n"))
		prev = h
	}
	return out
}

// TestKeyedChainResistsARewrite: the rewrite that passed the unkeyed
// verifier fails under the audit key, naming the first forged line; without
// the key a keyed log is reported as such, not as edited nonsense.
func TestKeyedChainResistsARewrite(t *testing.T) {
	key := testKey(t)
	name := filepath.Join(t.TempDir(), "audit.jsonl")
	logSamples(t, Options{File: name, Key: key}, 6)
	if _, err := Verify([]string{name}, VerifyOptions{Key: key}); err != nil {
		t.Fatalf("a genuine keyed log does not verify: %v", err)
	}
	lines := readLines(t, name)

	// Unkeyed, the same rewrite verifies: the weakness the key closes.
	plain := filepath.Join(t.TempDir(), "plain.jsonl")
	writeLines(t, plain, rewriteLikeAnAttacker(t, lines, nil))
	if _, err := Verify([]string{plain}, VerifyOptions{}); err != nil {
		t.Fatalf("the unkeyed rewrite should verify without a key (that is the weakness): %v", err)
	}
	for _, forgedWith := range [][]byte{nil, testKey(t)} {
		writeLines(t, name, rewriteLikeAnAttacker(t, lines, forgedWith))
		_, err := Verify([]string{name}, VerifyOptions{Key: key})
		var ce *ChainError
		if !errors.As(err, &ce) || ce.Line != 1 || !strings.Contains(ce.Err.Error(), "HMAC") {
			t.Fatalf("a rewrite forged with key %x verified, or failed elsewhere: %v", forgedWith, err)
		}
	}
	// A single edited field, the rest untouched, is found on its line.
	edited := append([]string(nil), lines...)
	edited[3] = strings.Replace(edited[3], `"decision":"allow"`, `"decision":"deny"`, 1)
	writeLines(t, name, edited)
	_, err := Verify([]string{name}, VerifyOptions{Key: key})
	var ce *ChainError
	if !errors.As(err, &ce) || ce.Line != 4 {
		t.Fatalf("an edited line 4: %v", err)
	}
	// Without --key, a keyed log says what to do.
	writeLines(t, name, lines)
	if _, err := Verify([]string{name}, VerifyOptions{}); err == nil || !strings.Contains(err.Error(), "--key") {
		t.Fatalf("a keyed log verified without a key must point at --key: %v", err)
	}
}

// TestCheckpointDetectsTruncation: cutting the newest records off a log is
// invisible to the chain, but not to the checkpoint the Logger keeps
// outside the log's directory.
func TestCheckpointDetectsTruncation(t *testing.T) {
	key := testKey(t)
	name := filepath.Join(t.TempDir(), "audit.jsonl")
	cpFile := filepath.Join(t.TempDir(), "audit.checkpoint")
	n := CheckpointEvery + 7
	logSamples(t, Options{File: name, Key: key, Checkpoint: cpFile}, n)
	cp, err := ReadCheckpoint(cpFile)
	if err != nil {
		t.Fatal(err)
	}
	if cp.Seq != uint64(n) {
		t.Fatalf("checkpoint at seq %d after Close, want %d", cp.Seq, n)
	}
	if _, err := Verify([]string{name}, VerifyOptions{Key: key, Checkpoint: &cp}); err != nil {
		t.Fatalf("a whole log fails against its checkpoint: %v", err)
	}
	lines := readLines(t, name)
	writeLines(t, name, lines[:n-3])
	if _, err := Verify([]string{name}, VerifyOptions{Key: key}); err != nil {
		t.Fatalf("without the checkpoint, truncation is not visible (as documented): %v", err)
	}
	_, err = Verify([]string{name}, VerifyOptions{Key: key, Checkpoint: &cp})
	if err == nil || !strings.Contains(err.Error(), "the newest 3 record(s) were cut off") {
		t.Fatalf("truncation against the checkpoint: %v", err)
	}
	// A checkpoint taken while running (every CheckpointEvery records).
	name2 := filepath.Join(t.TempDir(), "audit.jsonl")
	cp2 := filepath.Join(t.TempDir(), "cp")
	l, err := Open(Options{File: name2, Key: key, Checkpoint: cp2})
	if err != nil {
		t.Fatal(err)
	}
	writeSamples(t, l, 1, CheckpointEvery+1)
	mid, err := ReadCheckpoint(cp2)
	if err != nil || mid.Seq != CheckpointEvery {
		t.Fatalf("checkpoint while running: %+v %v", mid, err)
	}
	l.Close()
}

// TestCheckpointWrittenAtOpen: a log has a checkpoint from the moment it is
// opened (seq 0 for an empty log, which every log passes), so verify with
// --checkpoint works before the first CheckpointEvery records. Opening never
// replaces an existing checkpoint, so a cut made while the proxy was stopped
// still shows after it restarts.
func TestCheckpointWrittenAtOpen(t *testing.T) {
	key := testKey(t)
	name := filepath.Join(t.TempDir(), "audit.jsonl")
	cpFile := filepath.Join(t.TempDir(), "audit.checkpoint")
	l, err := Open(Options{File: name, Key: key, Checkpoint: cpFile})
	if err != nil {
		t.Fatal(err)
	}
	cp, err := ReadCheckpoint(cpFile)
	if err != nil || cp.Seq != 0 || cp.Hash != "" {
		t.Fatalf("checkpoint of a log just opened empty: %+v %v", cp, err)
	}
	writeSamples(t, l, 1, 3)
	if _, err := Verify([]string{name}, VerifyOptions{Key: key, Checkpoint: &cp}); err != nil {
		t.Fatalf("a log against the checkpoint taken when it was opened: %v", err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}

	writeLines(t, name, readLines(t, name)[:1]) // cut while stopped
	l, err = Open(Options{File: name, Key: key, Checkpoint: cpFile})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	cp, err = ReadCheckpoint(cpFile)
	if err != nil || cp.Seq != 3 {
		t.Fatalf("reopening replaced the checkpoint of the last run: %+v %v", cp, err)
	}
	if _, err := Verify([]string{name}, VerifyOptions{Key: key, Checkpoint: &cp}); err == nil || !strings.Contains(err.Error(), "the newest 2 record(s) were cut off") {
		t.Fatalf("a cut made while stopped, after a restart: %v", err)
	}

	if err := os.WriteFile(cpFile, []byte("{}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := ReadCheckpoint(cpFile); err == nil {
		t.Fatal("{} was read as a checkpoint")
	}
}

// TestKeyedLogResumesOnlyWithItsKey: a proxy restarted with another key
// refuses to continue the chain rather than write lines that never verify.
func TestKeyedLogResumesOnlyWithItsKey(t *testing.T) {
	key := testKey(t)
	name := filepath.Join(t.TempDir(), "audit.jsonl")
	logSamples(t, Options{File: name, Key: key}, 2)
	logSamples(t, Options{File: name, Key: key}, 1)
	if _, err := Verify([]string{name}, VerifyOptions{Key: key}); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(Options{File: name, Key: testKey(t)}); err == nil {
		t.Fatal("a keyed log was continued under another key")
	}
	sum := sha256.Sum256(key)
	if b := []byte(strings.Join(readLines(t, name), "\n")); bytes.Contains(b, key) || bytes.Contains(b, []byte(hex.EncodeToString(key))) || bytes.Contains(b, []byte(hex.EncodeToString(sum[:]))) {
		t.Fatal("the key is in the log")
	}
}
