package redact

// decodePercent decodes the %XX at b[0] == '%', hex digits in either case.
// A '%' not followed by two hex digits stands for itself, as browsers and
// most servers treat it.
func decodePercent(b []byte, final bool) (decoded, int, escapeKind) {
	for i := 1; i <= 2; i++ {
		if i == len(b) {
			return cutShort('%', final)
		}
		if _, ok := hexDigit(b[i]); !ok {
			return one('%'), 1, literal
		}
	}
	hi, _ := hexDigit(b[1])
	lo, _ := hexDigit(b[2])
	return one(hi<<4 | lo), 3, escaped
}

func hexDigit(c byte) (byte, bool) {
	switch {
	case '0' <= c && c <= '9':
		return c - '0', true
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10, true
	case 'A' <= c && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}
