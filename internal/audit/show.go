package audit

import (
	"bufio"
	"cmp"
	"fmt"
	"io"
	"maps"
	"slices"
	"strconv"
	"strings"
)

// Show writes the records of the files that f selects to w, oldest first: the
// raw JSON lines when raw, otherwise one readable line each (Record.String).
// Lines that are not records are reported to warn and skipped; Show does not
// check the chain (Verify does). A write-ahead record (phase start) is shown
// as "start"; one whose request has no outcome record is reported to warn at
// the end, since the proxy stopped while that request was in flight.
func Show(w, warn io.Writer, names []string, f Filter, raw bool) error {
	bw := bufio.NewWriter(w)
	open := map[string]uint64{}
	err := eachRecord(names, warn, func(r *Record, line []byte) error {
		if r.Phase == PhaseStart {
			open[r.RequestID] = r.Seq
		} else {
			delete(open, r.RequestID)
		}
		if !f.Match(r) {
			return nil
		}
		if raw {
			bw.Write(line)
		} else {
			bw.WriteString(r.String())
		}
		return bw.WriteByte('\n')
	})
	if ferr := bw.Flush(); err == nil {
		err = ferr
	}
	ids := slices.Collect(maps.Keys(open))
	slices.SortFunc(ids, func(a, b string) int { return cmp.Compare(open[a], open[b]) })
	for _, id := range ids {
		fmt.Fprintf(warn, "request %s (start record #%d) was forwarded but has no end record: the proxy stopped while it was in flight\n", id, open[id])
	}
	return err
}

// String renders r on one line for people:
//
//	2026-11-26T17:05:01.234Z #42 deny connect CONNECT evil.example:443 403 0.3ms in=0 out=0 client=10.0.0.5:51234 id=9f2c… reason="…"
//
// A placeholder forwarded unchanged shows as credential:problem, and
// @location for placeholder_location: placeholders="github:placeholder_location@query".
func (r *Record) String() string {
	var b strings.Builder
	b.WriteString(r.Time.UTC().Format("2006-01-02T15:04:05.000Z"))
	phase := ""
	if r.Phase != "" {
		phase = " " + r.Phase
	}
	fmt.Fprintf(&b, " #%d%s %s %s %s %s %d %sms in=%d out=%d",
		r.Seq, phase, orDash(r.Decision), orDash(r.Mode), orDash(r.Method), r.target(), r.Status,
		strconv.FormatFloat(r.DurationMs, 'f', 1, 64), r.BytesIn, r.BytesOut)
	if r.TTFBMs > 0 {
		fmt.Fprintf(&b, " ttfb=%sms", strconv.FormatFloat(r.TTFBMs, 'f', 1, 64))
	}
	fmt.Fprintf(&b, " client=%s", orDash(r.Client))
	if r.Identity != "" {
		fmt.Fprintf(&b, " identity=%q", r.Identity)
	}
	fmt.Fprintf(&b, " id=%s", orDash(r.RequestID))
	if r.Reason != "" {
		fmt.Fprintf(&b, " reason=%q", r.Reason)
	}
	if r.Error != "" {
		fmt.Fprintf(&b, " error=%q", r.Error)
	}
	if len(r.Credentials) > 0 {
		fmt.Fprintf(&b, " credentials=%s", strings.Join(r.Credentials, ","))
	}
	if r.Redactions > 0 {
		fmt.Fprintf(&b, " redactions=%d", r.Redactions)
	}
	if len(r.Placeholders) > 0 {
		notes := make([]string, len(r.Placeholders))
		for i, p := range r.Placeholders {
			notes[i] = p.Credential + ":" + p.Problem
			if p.Location != "" {
				notes[i] += "@" + p.Location
			}
		}
		fmt.Fprintf(&b, " placeholders=%q", strings.Join(notes, ","))
	}
	if len(r.DLP) > 0 {
		fmt.Fprintf(&b, " dlp=%q", strings.Join(r.DLP, ","))
	}
	return b.String()
}

// target is where the request went: host:port for a tunnel, a URL otherwise.
func (r *Record) target() string {
	hostPort := r.Host
	if r.Port != 0 {
		hostPort += ":" + strconv.Itoa(r.Port)
	}
	switch {
	case r.Host == "" && r.Path == "":
		return "-"
	case r.Host == "":
		return r.Path
	case r.Mode == "connect" || r.Scheme == "":
		return hostPort + r.Path
	}
	return r.Scheme + "://" + hostPort + r.Path
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
