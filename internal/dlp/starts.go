package dlp

// candidate is one start of one rule.
type candidate struct {
	rule  int
	start string
}

// pairSlot maps the first two bytes of every rule's starts (in each
// letter case for a case-insensitive rule) to 1 + their index in
// candidates; 0 means no start begins with those bytes. A 64 KiB table
// looked up once per byte is what makes the scan one linear pass.
var (
	pairSlot   [1 << 16]uint8
	candidates [][]candidate
)

func init() {
	for i, r := range rules {
		for _, w := range r.starts {
			for _, pair := range pairsOf(w, r.fold) {
				if pairSlot[pair] == 0 {
					candidates = append(candidates, nil)
					if len(candidates) > 255 {
						panic("dlp: more than 255 distinct start pairs")
					}
					pairSlot[pair] = uint8(len(candidates))
				}
				k := pairSlot[pair] - 1
				candidates[k] = append(candidates[k], candidate{rule: i, start: w})
			}
		}
	}
}

// pairsOf are the first two bytes of w as a table index, in every letter
// case when fold.
func pairsOf(w string, fold bool) []uint16 {
	cases := func(c byte) []byte {
		if fold && c >= 'a' && c <= 'z' {
			return []byte{c, c - 'a' + 'A'}
		}
		return []byte{c}
	}
	var out []uint16
	for _, a := range cases(w[0]) {
		for _, b := range cases(w[1]) {
			out = append(out, uint16(a)<<8|uint16(b))
		}
	}
	return out
}

// hasPrefix says whether b starts with w, in any letter case when fold
// (w is written in lower case).
func hasPrefix(b []byte, w string, fold bool) bool {
	if len(b) < len(w) {
		return false
	}
	if !fold {
		return string(b[:len(w)]) == w
	}
	return asciiEqualFold(b[:len(w)], w)
}
