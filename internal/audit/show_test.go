package audit

import (
	"bytes"
	"strings"
	"testing"
	"time"
)

func TestShowFiltersAndRendersRecords(t *testing.T) {
	name := writeLog(t, 12)
	tests := []struct {
		name   string
		filter Filter
		want   []string // request ids, in order
	}{
		{"all", Filter{}, []string{"req-0001", "req-0002", "req-0003", "req-0004", "req-0005", "req-0006", "req-0007", "req-0008", "req-0009", "req-0010", "req-0011", "req-0012"}},
		{"deny", Filter{Decisions: []string{"deny"}}, []string{"req-0003", "req-0006", "req-0009", "req-0012"}},
		{"deny or allow", Filter{Decisions: []string{"DENY", "allow"}}, nil},
		{"host glob", Filter{Host: "HOST1.*"}, []string{"req-0001", "req-0005", "req-0009"}},
		{"host and decision", Filter{Host: "host1.example.com", Decisions: []string{"deny"}}, []string{"req-0009"}},
		{"since", Filter{Since: time.Date(2026, 11, 26, 17, 0, 11, 0, time.UTC)}, []string{"req-0011", "req-0012"}},
		{"identity", Filter{Identity: "agent-1"}, []string{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out, warn bytes.Buffer
			if err := Show(&out, &warn, []string{name}, tt.filter, false); err != nil {
				t.Fatal(err)
			}
			if warn.Len() > 0 {
				t.Fatalf("warnings on a clean log: %s", warn.String())
			}
			lines := strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n")
			if out.Len() == 0 {
				lines = nil
			}
			if tt.want == nil { // every record
				if len(lines) != 12 {
					t.Fatalf("%d lines, want 12", len(lines))
				}
				return
			}
			if len(lines) != len(tt.want) {
				t.Fatalf("%d lines, want %d:\n%s", len(lines), len(tt.want), out.String())
			}
			for i, id := range tt.want {
				if !strings.Contains(lines[i], " id="+id+" ") {
					t.Errorf("line %d = %q, want request %s", i+1, lines[i], id)
				}
			}
		})
	}
}

func TestShowReadableLine(t *testing.T) {
	r := sampleRecord(3)
	r.Seq, r.Identity, r.Error = 3, "agent-7", "dial tcp: refused"
	want := `2026-11-26T17:00:03.000Z #3 deny forward GET http://host3.example.com:80/v1/models?api_key=*** 403 2.5ms in=30 out=300 ttfb=1.2ms client=127.0.0.1:40000 identity="agent-7" id=req-0003 reason="host on deny list" error="dial tcp: refused"`
	if got := r.String(); got != want {
		t.Fatalf("got  %s\nwant %s", got, want)
	}
	tunnel := &Record{Seq: 9, Mode: "connect", Method: "CONNECT", Host: "api.example.com", Port: 443, Decision: "allow", Status: 200}
	if got := tunnel.String(); !strings.Contains(got, " CONNECT api.example.com:443 200 ") {
		t.Fatalf("tunnel rendered as %q", got)
	}
}

func TestShowJSONGivesTheLinesAsWrittenAndSkipsForeignLines(t *testing.T) {
	name := writeLog(t, 3)
	lines := readLines(t, name)
	writeLines(t, name, append([]string{"proxy starting on :3000"}, lines...))
	var out, warn bytes.Buffer
	if err := Show(&out, &warn, []string{name}, Filter{}, true); err != nil {
		t.Fatal(err)
	}
	if out.String() != strings.Join(lines, "\n")+"\n" {
		t.Fatalf("--json output differs from the records in the file:\n%s", out.String())
	}
	if !strings.Contains(warn.String(), name+":1: skipped") {
		t.Fatalf("warning %q should name line 1", warn.String())
	}
}

func TestFilterRejectsAMalformedHostGlob(t *testing.T) {
	f := Filter{Host: "[a-"}
	if err := f.Validate(); err == nil || !strings.Contains(err.Error(), "[a-") {
		t.Fatalf("Validate: %v", err)
	}
}

func TestParseSince(t *testing.T) {
	now := time.Date(2026, 11, 26, 17, 0, 0, 0, time.UTC)
	for in, want := range map[string]time.Time{
		"10m":                  now.Add(-10 * time.Minute),
		"1h30m":                now.Add(-90 * time.Minute),
		"2026-11-26T16:00:00Z": now.Add(-time.Hour),
	} {
		if got, err := ParseSince(in, now); err != nil || !got.Equal(want) {
			t.Errorf("ParseSince(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"yesterday", "-5m", ""} {
		if _, err := ParseSince(in, now); err == nil {
			t.Errorf("ParseSince(%q) succeeded", in)
		}
	}
}

func TestStatsCountsDecisionsReasonsAndTopHosts(t *testing.T) {
	name := writeLog(t, 12)
	s, err := CollectStats([]string{name}, Filter{}, &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	if s.Records != 12 || s.Decisions["deny"] != 4 || s.Decisions["allow"] != 8 || s.Hosts["host0.example.com"] != 3 {
		t.Fatalf("stats %+v", s)
	}
	var out bytes.Buffer
	if err := s.WriteText(&out, 2); err != nil {
		t.Fatal(err)
	}
	text := out.String()
	for _, want := range []string{"records: 12\n", "       8  allow\n", "       4  host on deny list\n", "hosts (top 2):\n         3  host0.example.com\n         3  host1.example.com\n"} {
		if !strings.Contains(text, want) {
			t.Errorf("stats output lacks %q:\n%s", want, text)
		}
	}
	if strings.Contains(text, "host3.example.com") {
		t.Errorf("top 2 hosts shows a third:\n%s", text)
	}
}
