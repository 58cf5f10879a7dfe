package audit

import (
	"bytes"
	"encoding/json"
	"math"
	"testing"
	"time"
)

// FuzzAppendRecord holds the hand-written encoder to json.Marshal's output,
// byte for byte, for any field values: the log's readers (audit show,
// verify, anyone's jq) parse it as JSON, and earlier logs were written by
// json.Marshal.
func FuzzAppendRecord(f *testing.F) {
	f.Add("GET", "/a?b=<c>&d", "x\u2028y\u2029\x00\x1f\b\f\n\r\t\"\\", "\xff\xfe ok \xe2\x82", 1.5, 1e-7, uint64(7), int64(-3), 2)
	f.Add("", "", "", "", 0.0, 123456789.125, uint64(0), int64(0), 0)
	f.Add("POST", "/ü/日本", "é", "<script>", 1e21, 5e-324, uint64(math.MaxUint64), int64(math.MinInt64), 3)
	f.Fuzz(func(t *testing.T, method, path, errText, other string, ttfb, dur float64, seq uint64, n int64, k int) {
		if math.IsNaN(ttfb) || math.IsInf(ttfb, 0) || math.IsNaN(dur) || math.IsInf(dur, 0) {
			return // json.Marshal refuses them; appendFloat writes 0
		}
		r := Record{
			Seq: seq, Time: time.Unix(n%(1<<34), n%1e9).UTC(), RequestID: other, Client: "127.0.0.1:1",
			Identity: other, Role: method, Mode: "forward", Method: method, Scheme: "http", Host: other,
			Port: int(n % 65536), Path: path, Decision: "allow", Reason: errText, Status: k,
			BytesIn: n, BytesOut: -n, TTFBMs: ttfb, DurationMs: dur, Error: errText,
			Redactions: k, Config: errText, Phase: method, Prev: other, Hash: path,
		}
		for i := 0; i < k%4; i++ {
			r.Credentials = append(r.Credentials, other)
			r.DLP = append(r.DLP, method)
			r.Placeholders = append(r.Placeholders, PlaceholderNote{Credential: other, Problem: errText, Location: path})
		}
		want, err := json.Marshal(&r)
		if err != nil {
			t.Skip(err) // a time json.Marshal refuses (year outside 0–9999)
		}
		if got := appendRecord(nil, &r); !bytes.Equal(got, want) {
			t.Fatalf("appendRecord:\n%s\njson.Marshal:\n%s", got, want)
		}
	})
}

// TestAppendRecordAllocatesNothing: the point of the encoder.
func TestAppendRecordAllocatesNothing(t *testing.T) {
	r := Record{Time: time.Now(), RequestID: "r", Method: "GET", Path: "/<x>", Credentials: []string{"github"}}
	buf := make([]byte, 0, 2048)
	if n := testing.AllocsPerRun(100, func() { buf = appendRecord(buf[:0], &r) }); n != 0 {
		t.Fatalf("appendRecord allocates %v times per record", n)
	}
}
