package audit

import (
	"math"
	"strconv"
	"time"
	"unicode/utf8"
)

// appendRecord appends r as JSON, byte for byte what json.Marshal writes
// for it (field order, omitempty, HTML-safe string escapes, float format),
// which FuzzAppendRecord holds it to. Reflection-based json.Marshal was a
// tenth of the proxy's time per request, which writes two records (the
// write-ahead start and the outcome); this writes one allocation-free pass
// into a buffer the caller sizes.
func appendRecord(b []byte, r *Record) []byte {
	b = append(b, `{"seq":`...)
	b = strconv.AppendUint(b, r.Seq, 10)
	b = append(b, `,"time":"`...)
	b = r.Time.AppendFormat(b, time.RFC3339Nano)
	b = append(b, '"')
	b = appendField(b, "request_id", r.RequestID)
	b = appendField(b, "client", r.Client)
	b = appendField(b, "identity", r.Identity)
	if r.Role != "" {
		b = appendField(b, "role", r.Role)
	}
	b = appendField(b, "mode", r.Mode)
	b = appendField(b, "method", r.Method)
	b = appendField(b, "scheme", r.Scheme)
	b = appendField(b, "host", r.Host)
	b = append(b, `,"port":`...)
	b = strconv.AppendInt(b, int64(r.Port), 10)
	b = appendField(b, "path", r.Path)
	b = appendField(b, "decision", r.Decision)
	b = appendField(b, "reason", r.Reason)
	b = append(b, `,"status":`...)
	b = strconv.AppendInt(b, int64(r.Status), 10)
	b = append(b, `,"bytes_in":`...)
	b = strconv.AppendInt(b, r.BytesIn, 10)
	b = append(b, `,"bytes_out":`...)
	b = strconv.AppendInt(b, r.BytesOut, 10)
	b = append(b, `,"ttfb_ms":`...)
	b = appendFloat(b, r.TTFBMs)
	b = append(b, `,"duration_ms":`...)
	b = appendFloat(b, r.DurationMs)
	if r.Error != "" {
		b = appendField(b, "error", r.Error)
	}
	if len(r.Credentials) > 0 {
		b = appendStrings(b, "credentials", r.Credentials)
	}
	if r.Redactions != 0 {
		b = append(b, `,"redactions":`...)
		b = strconv.AppendInt(b, int64(r.Redactions), 10)
	}
	if len(r.Placeholders) > 0 {
		b = append(b, `,"placeholders":[`...)
		for i, p := range r.Placeholders {
			if i > 0 {
				b = append(b, ',')
			}
			b = append(b, `{"credential":`...)
			b = appendString(b, p.Credential)
			b = appendField(b, "problem", p.Problem)
			if p.Location != "" {
				b = appendField(b, "location", p.Location)
			}
			b = append(b, '}')
		}
		b = append(b, ']')
	}
	if len(r.DLP) > 0 {
		b = appendStrings(b, "dlp", r.DLP)
	}
	if r.Config != "" {
		b = appendField(b, "config", r.Config)
	}
	if r.Phase != "" {
		b = appendField(b, "phase", r.Phase)
	}
	b = appendField(b, "prev", r.Prev)
	b = appendField(b, "hash", r.Hash)
	return append(b, '}')
}

// appendField appends `,"name":` and s as a JSON string.
func appendField(b []byte, name, s string) []byte {
	b = append(b, ',', '"')
	b = append(b, name...)
	b = append(b, '"', ':')
	return appendString(b, s)
}

const hexDigits = "0123456789abcdef"

// appendString appends s as a JSON string the way encoding/json does with
// its HTML escaping on: <, > and & as \u003c…, U+2028 and U+2029 escaped,
// invalid UTF-8 as U+FFFD.
// appendStrings appends ,"name":[…] for a list of strings.
func appendStrings(b []byte, name string, list []string) []byte {
	b = append(b, ',', '"')
	b = append(b, name...)
	b = append(b, `":[`...)
	for i, s := range list {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendString(b, s)
	}
	return append(b, ']')
}

func appendString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' && c != '<' && c != '>' && c != '&' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\b':
				b = append(b, '\\', 'b')
			case '\f':
				b = append(b, '\\', 'f')
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hexDigits[r&0xf])
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}

// appendFloat appends f as encoding/json formats a float64: the shortest
// decimal that reads back as f, in exponent form only below 1e-6 or from
// 1e21 on, with a one-digit negative exponent not padded ("1e-7"). The
// durations recorded are finite; a NaN or an infinity, which JSON cannot
// hold, is written as 0.
func appendFloat(b []byte, f float64) []byte {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return append(b, '0')
	}
	format := byte('f')
	if abs := math.Abs(f); abs != 0 && (abs < 1e-6 || abs >= 1e21) {
		format = 'e'
	}
	b = strconv.AppendFloat(b, f, format, -1, 64)
	if format == 'e' {
		if n := len(b); n >= 4 && b[n-4] == 'e' && b[n-3] == '-' && b[n-2] == '0' {
			b[n-2] = b[n-1]
			b = b[:n-1]
		}
	}
	return b
}
