package audit

import (
	"time"
	"unicode/utf8"
)

// Record is one line of the audit log: one request, tunnel or refusal.
//
// Seq, Prev and Hash belong to the Logger: whatever the caller puts there is
// replaced when the record is written (see chain.go).
type Record struct {
	Seq         uint64    `json:"seq"`
	Time        time.Time `json:"time"`
	RequestID   string    `json:"request_id"`
	Client      string    `json:"client"`         // remote ip:port
	Identity    string    `json:"identity"`       // the client certificate's identity ("" without one)
	Role        string    `json:"role,omitempty"` // the role whose policy decided (config roles; "default" for the top-level policy)
	Mode        string    `json:"mode"`           // forward | connect | target | intercept | local | malformed | tls
	Method      string    `json:"method"`
	Scheme      string    `json:"scheme"`
	Host        string    `json:"host"`
	Port        int       `json:"port"`
	Path        string    `json:"path"`     // callers pass it through MaskPath
	Decision    string    `json:"decision"` // allow | deny | report | error
	Reason      string    `json:"reason"`
	Status      int       `json:"status"`
	BytesIn     int64     `json:"bytes_in"`  // client → upstream
	BytesOut    int64     `json:"bytes_out"` // upstream → client
	TTFBMs      float64   `json:"ttfb_ms"`
	DurationMs  float64   `json:"duration_ms"`
	Error       string    `json:"error,omitempty"`
	Credentials []string  `json:"credentials,omitempty"` // names of credentials injected
	Redactions  int       `json:"redactions,omitempty"`
	// Placeholders are the placeholders the request carried that were
	// forwarded unchanged, and why.
	Placeholders []PlaceholderNote `json:"placeholders,omitempty"`
	// DLP names the outbound rules that matched what the request sent
	// (never the value matched).
	DLP []string `json:"dlp,omitempty"`
	// Config is the version of the configuration that decided the
	// request (config.Config.Version).
	Config string `json:"config,omitempty"`
	// Phase is "start" for the record written before an allowed request
	// is forwarded (write-ahead), so that a request that left the proxy
	// has a trace even if the proxy dies before it ends; the record of
	// its outcome, with the same request_id, has no phase.
	Phase string `json:"phase,omitempty"`
	Prev  string `json:"prev"` // Hash of the record before this one; "" for the first
	Hash  string `json:"hash"` // sha256 of this line without its hash field, hex
}

// PlaceholderNote is one placeholder a request carried that the proxy
// forwarded unchanged: Problem is placeholder_foreign_host (the destination
// is not among its credential's hosts) or placeholder_location (found in a
// part of the request, Location, its credential does not inject into).
type PlaceholderNote struct {
	Credential string `json:"credential"`
	Problem    string `json:"problem"`
	Location   string `json:"location,omitempty"`
}

// PhaseStart marks a write-ahead record.
const PhaseStart = "start"

// MaxRecordBytes bounds one line of the log, so that room for the records
// of the requests in flight can be reserved: fields a client controls are
// cut (and marked with "…") until the line fits.
const MaxRecordBytes = 4096

// bound cuts the fields a client or upstream controls to n bytes each.
func (r *Record) bound(n int) {
	for _, f := range []*string{&r.Path, &r.Error, &r.Method, &r.Host, &r.Identity, &r.Reason, &r.Client} {
		if len(*f) > n {
			cut := n
			for cut > 0 && !utf8.RuneStart((*f)[cut]) {
				cut--
			}
			*f = (*f)[:cut] + "…"
		}
	}
}
