package redact

import (
	"bytes"
	"encoding/binary"
	"math/bits"
	"slices"
)

// The matcher is a sampled q-gram filter. Every pattern core is at least
// minLen bytes long, so an occurrence starting at i covers the q-grams at
// i … i+minLen-q; probing only every step = minLen-q+1 positions is enough to
// land on one of them. A probe hashes the q-gram into a bitmap that fits in
// cache; only on a bit hit does it consult the exact table and compare bytes.
// On ordinary text almost every probe is one load, one OR, one multiply and
// one bit test, every step bytes, which is what makes 1,000 secrets × all
// encodings cheap.
//
// Probes, the bitmap and the tables all use ASCII-folded q-grams (every byte
// with its 0x20 bit set, which maps each upper-case letter onto its lower
// case), so one probe serves case-sensitive forms (base64) and
// case-insensitive ones (the raw value, hex) alike; the exact comparison
// after a bit hit then honours each pattern's own rule.
const (
	qgram = 4
	// maxAnchor caps minLen: longer anchors add table entries (and false
	// positives) faster than they add skip distance.
	maxAnchor = 16
)

type candidate struct {
	pat int32
	off int32 // offset of the q-gram inside the pattern's core
}

type matcher struct {
	pats    []pattern
	minLen  int
	step    int
	maxSpan int
	shift   uint // 32 - log2(bitmap bits)
	bitmap  []uint64
	// long holds candidates whose core has 8 bytes from the probe on,
	// keyed by those 8 bytes, so secrets sharing a prefix (every GitHub
	// token starts ghp_) do not all need checking on each probe; short holds
	// the rest, keyed by the probed 4 bytes.
	long  map[uint64][]candidate
	short map[uint32][]candidate
}

// fold32 and fold64 set the 0x20 bit of every byte: equal for strings that
// differ only in ASCII letter case (and for a few other pairs, which the
// exact comparison tells apart).
func fold32(x uint32) uint32 { return x | 0x20202020 }
func fold64(x uint64) uint64 { return x | 0x2020202020202020 }

func lowerASCII(c byte) byte {
	if 'A' <= c && c <= 'Z' {
		return c + 'a' - 'A'
	}
	return c
}

// equalFold reports whether b equals lower, a lower-case core, ignoring
// ASCII letter case.
func equalFold(b, lower []byte) bool {
	if len(b) != len(lower) {
		return false
	}
	for i, c := range b {
		if lowerASCII(c) != lower[i] {
			return false
		}
	}
	return true
}

func (p *pattern) matchesAt(buf []byte, i int) bool {
	b := buf[i : i+len(p.core)]
	if p.fold {
		return equalFold(b, p.core)
	}
	return bytes.Equal(b, p.core)
}

func newMatcher(pats []pattern) *matcher {
	m := &matcher{pats: pats, long: map[uint64][]candidate{}, short: map[uint32][]candidate{}}
	if len(pats) == 0 {
		return m
	}
	m.minLen = maxAnchor
	for i := range pats {
		m.minLen = min(m.minLen, len(pats[i].core))
		m.maxSpan = max(m.maxSpan, pats[i].span())
	}
	m.step = m.minLen - qgram + 1
	entries := len(pats) * m.step
	// About 32 bits per entry keeps the false-positive rate near 3%.
	logBits := min(max(bits.Len(uint(entries*32)), 12), 26)
	m.shift = uint(32 - logBits)
	m.bitmap = make([]uint64, (1<<logBits)/64)
	for pi := range pats {
		core := pats[pi].core
		for off := 0; off < m.step; off++ {
			x := fold32(binary.LittleEndian.Uint32(core[off:]))
			h := m.hash(x)
			m.bitmap[h>>6] |= 1 << (h & 63)
			c := candidate{pat: int32(pi), off: int32(off)}
			if off+8 <= len(core) {
				y := fold64(binary.LittleEndian.Uint64(core[off:]))
				m.long[y] = append(m.long[y], c)
			} else {
				m.short[x] = append(m.short[x], c)
			}
		}
	}
	return m
}

func (m *matcher) hash(x uint32) uint32 { return (x * 0x9E3779B1) >> m.shift }

func sortBytes(s [][]byte) [][]byte {
	slices.SortFunc(s, bytes.Compare)
	return slices.CompactFunc(s, bytes.Equal)
}

// find reports every hit whose core starts at or after from in buf and whose
// extent is known. With final false, a base64 hit whose tail extension runs
// past the end of buf is not reported (more input decides it); pending is then
// the smallest start of such a hit, or len(buf) when there is none.
func (m *matcher) find(buf []byte, from int, final bool, hit func(start, end int)) (pending int) {
	pending = len(buf)
	if len(m.pats) == 0 {
		return pending
	}
	for p := from; p+qgram <= len(buf); p += m.step {
		x := fold32(binary.LittleEndian.Uint32(buf[p:]))
		h := m.hash(x)
		if m.bitmap[h>>6]&(1<<(h&63)) == 0 {
			continue
		}
		if p+8 <= len(buf) {
			pending = m.verify(buf, p, from, final, m.long[fold64(binary.LittleEndian.Uint64(buf[p:]))], pending, hit)
		}
		if len(m.short) > 0 {
			pending = m.verify(buf, p, from, final, m.short[x], pending, hit)
		}
	}
	return pending
}

// verify checks the candidates of the probe at p and reports their hits.
// A long candidate needs 8 bytes after p, which any complete hit provides.
func (m *matcher) verify(buf []byte, p, from int, final bool, cands []candidate, pending int, hit func(start, end int)) int {
	for _, c := range cands {
		i := p - int(c.off)
		pat := &m.pats[c.pat]
		if i < from || i+len(pat.core) > len(buf) || !pat.matchesAt(buf, i) {
			continue
		}
		start, end, known := pat.extent(buf, i, final)
		if !known {
			pending = min(pending, start)
			continue
		}
		hit(start, end)
	}
	return pending
}

// extent widens a core hit at i to the characters that mix in secret bits.
// known is false when buf ends before the tail could be decided.
func (p *pattern) extent(buf []byte, i int, final bool) (start, end int, known bool) {
	start, end = i, i+len(p.core)
	if p.back && start > 0 && p.alpha[buf[start-1]] {
		start--
	}
	if !p.tail {
		return start, end, true
	}
	if end == len(buf) {
		return start, end, final
	}
	if !p.alpha[buf[end]] {
		return start, end, true
	}
	end++
	for pad := 0; pad < 2; pad++ {
		if end == len(buf) {
			return start, end, final
		}
		if buf[end] != '=' {
			break
		}
		end++
	}
	return start, end, true
}
