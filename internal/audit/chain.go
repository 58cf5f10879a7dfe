package audit

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"hash"
	"strconv"
)

// The hash chain. Every line is the JSON of a Record whose last two fields are
// "prev" and "hash":
//
//	{"seq":7,"time":…,…,"prev":"<hash of line 6>","hash":"<hex sha256>"}
//
// hash = HMAC-SHA256 under the audit key (or, for a log written without a
// key, plain SHA-256) of the line's bytes with `,"hash":"…"` removed, that is
// of the record's canonical JSON without its hash (which contains seq and
// prev). With a key, someone who can write the file but does not hold the key
// cannot produce a line that verifies: an edit, a deletion or a reordering
// shows, however many hashes are recomputed. The
// verifier hashes the bytes exactly as they are in the file instead of
// re-encoding the parsed record, so a field added by a newer version, or a float
// formatted differently, can never make a genuine line look edited.

const (
	hashLen = sha256.Size * 2
	// The zero-valued chain fields as json.Marshal writes them, replaced by seal.
	zeroHead = `{"seq":0`
	zeroTail = `"prev":"","hash":""}`
	// What every sealed line ends with, around the hex hash.
	hashOpen  = `,"hash":"`
	hashClose = `"}`
)

// encodeBody encodes r with its chain fields zeroed, ready for seal. It is the
// expensive half of a write and needs no lock.
func encodeBody(r *Record) ([]byte, error) {
	c := *r
	c.Seq, c.Prev, c.Hash = 0, "", ""
	b := appendRecord(make([]byte, 0, 1024), &c)
	// Room for seq, prev and hash, which seal adds.
	for n := 1024; len(b)+32+2*hashLen > MaxRecordBytes && n >= 16; n /= 2 {
		c.bound(n)
		b = appendRecord(b[:0], &c)
	}
	if !bytes.HasPrefix(b, []byte(zeroHead)) || !bytes.HasSuffix(b, []byte(zeroTail)) {
		// Only a change to appendRecord's field order can get here.
		return nil, fmt.Errorf("audit: Record must start with seq and end with prev, hash; got %.40q…", b)
	}
	return b, nil
}

// seal turns a body from encodeBody into the line for position seq after the
// record whose hash is prev, hashed with sum (newSum's, reset here; the
// Logger keeps one, since making an HMAC costs more than using it). It
// returns the line (with its newline) and its hash.
func seal(body []byte, seq uint64, prev string, sum hash.Hash) (line []byte, hash string) {
	mid := body[len(zeroHead) : len(body)-len(zeroTail)]
	line = make([]byte, 0, len(body)+32+2*hashLen)
	line = append(line, `{"seq":`...)
	line = strconv.AppendUint(line, seq, 10)
	line = append(line, mid...)
	line = append(line, `"prev":"`...)
	line = append(line, prev...)
	line = append(line, '"')
	sum.Reset()
	sum.Write(line)
	sum.Write([]byte{'}'})
	var raw [sha256.Size]byte
	var hexSum [hashLen]byte
	hex.Encode(hexSum[:], sum.Sum(raw[:0]))
	line = append(line, hashOpen...)
	line = append(line, hexSum[:]...)
	line = append(line, hashClose...)
	line = append(line, '\n')
	return line, string(hexSum[:])
}

// lineHash checks that line (without its newline) carries the hash of its own
// content and returns that hash.
func lineHash(line []byte, key []byte) (string, error) {
	suffixLen := len(hashOpen) + hashLen + len(hashClose)
	if len(line) < suffixLen+1 || !bytes.HasSuffix(line, []byte(hashClose)) ||
		!bytes.Equal(line[len(line)-suffixLen:len(line)-suffixLen+len(hashOpen)], []byte(hashOpen)) {
		return "", fmt.Errorf(`line does not end with a "hash" field`)
	}
	claimed := string(line[len(line)-len(hashClose)-hashLen : len(line)-len(hashClose)])
	sum := newSum(key)
	sum.Write(line[:len(line)-suffixLen])
	sum.Write([]byte{'}'})
	if got := hex.EncodeToString(sum.Sum(nil)); got != claimed {
		if key == nil {
			return "", fmt.Errorf("content does not match its SHA-256 hash: the line was edited, or the log was written with an audit key (verify with --key)")
		}
		return "", fmt.Errorf("content does not match its HMAC under the audit key: the line was edited or forged, or this is not the key the log was written with")
	}
	return claimed, nil
}

// KeyLen is the size of an audit key: an HMAC-SHA256 key.
const KeyLen = 32

// newSum is what a line's hash is computed with: HMAC-SHA256 under key, or
// SHA-256 for a log without one.
func newSum(key []byte) hash.Hash {
	if key == nil {
		return sha256.New()
	}
	return hmac.New(sha256.New, key)
}
