package audit

import (
	"fmt"
	"time"
)

// ParseSince reads the --since of `slapenir audit show/stats`: a duration back
// from now (10m, 2h30m) or a time (RFC 3339, 2026-11-26T17:00:00Z).
func ParseSince(s string, now time.Time) (time.Time, error) {
	if d, err := time.ParseDuration(s); err == nil {
		if d < 0 {
			return time.Time{}, fmt.Errorf("audit: --since %q is negative; give how long ago, e.g. 10m", s)
		}
		return now.Add(-d), nil
	}
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t, nil
	}
	return time.Time{}, fmt.Errorf("audit: --since %q is neither a duration (10m, 2h) nor a time (2026-11-26T17:00:00Z)", s)
}
