package audit

import (
	"bufio"
	"fmt"
	"io"
	"sort"
	"time"
)

// Stats counts the records of a log, and the requests they are about: a
// forwarded request has a write-ahead record (phase start) and its outcome
// record, and counts once, by its outcome.
type Stats struct {
	Records     int // lines selected, write-ahead records included
	Requests    int
	Unended     int // requests with a start record and no outcome (counted by their start)
	First, Last time.Time
	BytesIn     int64
	BytesOut    int64
	Decisions   map[string]int // per request
	Reasons     map[string]int
	Hosts       map[string]int
}

// CollectStats counts the records of the files that f selects. Lines that are
// not records are reported to warn and skipped. A request is selected by its
// outcome record, or by its start record when the proxy stopped before its
// outcome was written.
func CollectStats(names []string, f Filter, warn io.Writer) (*Stats, error) {
	s := &Stats{Decisions: map[string]int{}, Reasons: map[string]int{}, Hosts: map[string]int{}}
	unended := map[string]*Record{}
	err := eachRecord(names, warn, func(r *Record, _ []byte) error {
		if f.Match(r) {
			s.addRecord(r)
		}
		if r.Phase == PhaseStart {
			unended[r.RequestID] = r
			return nil
		}
		delete(unended, r.RequestID)
		if f.Match(r) {
			s.addRequest(r)
		}
		return nil
	})
	for _, r := range unended {
		if f.Match(r) {
			s.addRequest(r)
			s.Unended++
		}
	}
	return s, err
}

func (s *Stats) addRecord(r *Record) {
	s.Records++
	if s.First.IsZero() || r.Time.Before(s.First) {
		s.First = r.Time
	}
	if r.Time.After(s.Last) {
		s.Last = r.Time
	}
}

func (s *Stats) addRequest(r *Record) {
	s.Requests++
	s.BytesIn += r.BytesIn
	s.BytesOut += r.BytesOut
	s.Decisions[orDash(r.Decision)]++
	s.Reasons[orDash(r.Reason)]++
	s.Hosts[orDash(r.Host)]++
}

// WriteText prints the totals, every decision, and the top reasons and hosts
// (decisions, reasons and hosts count requests).
func (s *Stats) WriteText(w io.Writer, top int) error {
	bw := bufio.NewWriter(w)
	fmt.Fprintf(bw, "records: %d\n", s.Records)
	fmt.Fprintf(bw, "requests: %d (a forwarded request's start and outcome records count once)\n", s.Requests)
	if s.Unended > 0 {
		fmt.Fprintf(bw, "  of which %d forwarded with no outcome record: the proxy stopped while they were in flight\n", s.Unended)
	}
	if s.Records > 0 {
		fmt.Fprintf(bw, "from %s to %s\n", s.First.UTC().Format(time.RFC3339), s.Last.UTC().Format(time.RFC3339))
	}
	fmt.Fprintf(bw, "bytes in (client → upstream): %d, out (upstream → client): %d\n", s.BytesIn, s.BytesOut)
	writeCounts(bw, "decisions", s.Decisions, 0)
	writeCounts(bw, fmt.Sprintf("reasons (top %d)", top), s.Reasons, top)
	writeCounts(bw, fmt.Sprintf("hosts (top %d)", top), s.Hosts, top)
	return bw.Flush()
}

// writeCounts prints counts largest first (ties by name), at most top of them
// (all when top is 0).
func writeCounts(w io.Writer, title string, counts map[string]int, top int) {
	keys := make([]string, 0, len(counts))
	for k := range counts {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		if counts[keys[i]] != counts[keys[j]] {
			return counts[keys[i]] > counts[keys[j]]
		}
		return keys[i] < keys[j]
	})
	if top > 0 && len(keys) > top {
		keys = keys[:top]
	}
	fmt.Fprintf(w, "%s:\n", title)
	for _, k := range keys {
		fmt.Fprintf(w, "  %8d  %s\n", counts[k], k)
	}
}
