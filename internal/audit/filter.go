package audit

import (
	"fmt"
	"path"
	"strings"
	"time"
)

// Filter selects records for show and stats. Its zero value selects all.
type Filter struct {
	Decisions []string  // any of these (allow, deny, report, error); empty = all
	Host      string    // glob on the host, case-insensitive (*.example.com)
	Identity  string    // exact mTLS identity
	Since     time.Time // records at or after this time
}

// Validate reports a Host glob that can never match because it is malformed.
func (f *Filter) Validate() error {
	if _, err := path.Match(f.Host, ""); err != nil {
		return fmt.Errorf("audit: host pattern %q is malformed: %v (use * and ? wildcards, e.g. *.example.com)", f.Host, err)
	}
	return nil
}

// Match reports whether r is selected.
func (f *Filter) Match(r *Record) bool {
	if len(f.Decisions) > 0 && !contains(f.Decisions, r.Decision) {
		return false
	}
	if f.Host != "" {
		if ok, _ := path.Match(strings.ToLower(f.Host), strings.ToLower(r.Host)); !ok {
			return false
		}
	}
	if f.Identity != "" && r.Identity != f.Identity {
		return false
	}
	if !f.Since.IsZero() && r.Time.Before(f.Since) {
		return false
	}
	return true
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if strings.EqualFold(x, s) {
			return true
		}
	}
	return false
}
