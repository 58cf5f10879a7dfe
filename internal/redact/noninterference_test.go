package redact

import (
	"bytes"
	"math/rand/v2"
	"slices"
	"testing"
	"unicode/utf8"
)

// sameShape returns a secret of the same shape as s (shape.go): the same
// length, each byte replaced by a random one of its class, each non-ASCII
// character by a random one of its class (Latin-1 or beyond) and UTF-8
// length. What a Writer releases, and when, may depend on the shape alone.
func sameShape(rng *rand.Rand, s []byte) []byte {
	out := make([]byte, len(s))
	for i := 0; i < len(s); {
		if r, size := utf8.DecodeRune(s[i:]); size > 1 {
			utf8.EncodeRune(out[i:], randomRuneLike(rng, r, size))
			i += size
			continue
		}
		switch c := s[i]; {
		case printable(c):
			out[i] = byte(0x21 + rng.IntN(0x7e-0x21+1))
		case classLineBreak[c]:
			out[i] = "\n\r"[rng.IntN(2)]
		case c >= 0x80:
			// Not UTF-8: a continuation byte alone stays not UTF-8.
			out[i] = byte(0x80 + rng.IntN(0x40))
		case c == ' ' || c == '\t':
			out[i] = c
		default:
			out[i] = []byte{0, 1, 7, 0x0b, 0x1b, 0x7f}[rng.IntN(6)]
		}
		i++
	}
	return out
}

// randomRuneLike returns a random character of r's class (Latin-1 or
// beyond) whose UTF-8 form has size bytes.
func randomRuneLike(rng *rand.Rand, r rune, size int) rune {
	if r <= 0xff {
		return rune(0x80 + rng.IntN(0x80))
	}
	for {
		var c rune
		switch size {
		case 2:
			c = rune(0x100 + rng.IntN(0x800-0x100))
		case 3:
			c = rune(0x800 + rng.IntN(0x10000-0x800))
		default:
			c = rune(0x10000 + rng.IntN(0x110000-0x10000))
		}
		if utf8.ValidRune(c) && utf8.RuneLen(c) == size {
			return c
		}
	}
}

// shapes are the kinds of secret the noninterference tests draw from.
var shapes = []string{
	"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789",
	"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/",
	"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_",
	"0123456789abcdef",
	"abcdefghijklmnopqrstuvwxyz !&<>\"\\%",
	"abcdef\n\r\t\x00\x7f\xc3\xbc",
	"abcdefgh\xe2\x82\xac",
	"abcdefgh\uFFFD",
}

// randomSecrets draws one to three secrets of random shapes and lengths,
// and a second set of the same shapes.
func randomSecrets(rng *rand.Rand) (a, b [][]byte) {
	for n := 1 + rng.IntN(3); n > 0; n-- {
		s := randBytes(rng, MinSecretLen+rng.IntN(33), shapes[rng.IntN(len(shapes))])
		a = append(a, s)
		b = append(b, sameShape(rng, s))
	}
	return a, b
}

// nearMisses writes text an agent would send to probe a Writer: proper
// prefixes of the secrets' encoded forms (the guesses that match so far),
// the same prefixes with their last byte changed, and ordinary text with
// line breaks between.
func nearMisses(rng *rand.Rand, secrets [][]byte, filler []byte, pieces int) []byte {
	encs := encoders()
	var in []byte
	for k := 0; k < pieces; k++ {
		switch rng.IntN(4) {
		case 0, 1:
			form := bytes.Clone(encs[rng.IntN(len(encs))].enc(rng, secrets[rng.IntN(len(secrets))]))
			form = form[:rng.IntN(len(form))]
			if len(form) > 0 && rng.IntN(2) == 0 {
				form[len(form)-1] ^= 1 + byte(rng.IntN(0x7f))
			}
			in = append(in, form...)
		case 2:
			in = append(in, randBytes(rng, rng.IntN(12), nearMiss)...)
		default:
			if len(filler) > 0 {
				i := rng.IntN(len(filler))
				in = append(in, filler[i:min(len(filler), i+1+rng.IntN(16))]...)
			}
		}
		if rng.IntN(3) == 0 {
			in = append(in, "\n"[:rng.IntN(2)]+"data: "[:rng.IntN(7)]...)
		}
	}
	return in
}

// flushTrace streams in through r, cut at cuts with a Flush after each
// piece, and returns the output and its length after each Flush: what a
// reader of the output sees, and when.
func flushTrace(t testing.TB, r *Redactor, in []byte, cuts []int) ([]byte, []int) {
	t.Helper()
	var out bytes.Buffer
	w := r.NewWriter(&out)
	var trace []int
	prev := 0
	for _, c := range append(cuts, len(in)) {
		if _, err := w.Write(in[prev:c]); err != nil {
			t.Fatal(err)
		}
		prev = c
		if err := w.Flush(); err != nil {
			t.Fatal(err)
		}
		trace = append(trace, out.Len())
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return out.Bytes(), trace
}

// checkNoninterference is the property: on input that holds no form of
// either set of secrets, Redactors for two sets of the same shape release
// the same bytes at the same flushes. It reports false when the input held
// a secret after all (nothing to compare).
func checkNoninterference(t testing.TB, a, b [][]byte, enc Encoding, in []byte, cuts []int) bool {
	t.Helper()
	ra, err := New(a, Options{Encodings: enc})
	if err != nil {
		t.Fatal(err)
	}
	rb, err := New(b, Options{Encodings: enc})
	if err != nil {
		t.Fatal(err)
	}
	if _, n := referenceRedact(ra, in); n > 0 {
		return false
	}
	if _, n := referenceRedact(rb, in); n > 0 {
		return false
	}
	if ra.Window() != rb.Window() {
		t.Fatalf("secrets of one shape have windows %d and %d", ra.Window(), rb.Window())
	}
	outA, traceA := flushTrace(t, ra, in, cuts)
	outB, traceB := flushTrace(t, rb, in, cuts)
	if !bytes.Equal(outA, in) || !bytes.Equal(outB, in) {
		t.Fatalf("input without a secret was changed")
	}
	if !slices.Equal(traceA, traceB) {
		i := 0
		for traceA[i] == traceB[i] {
			i++
		}
		t.Fatalf("two vaults of one shape release %q at different points: flush %d (after byte %d) released %d bytes under one and %d under the other\nsecrets %q / %q",
			in, i, append(cuts, len(in))[i], traceA[i], traceB[i], a, b)
	}
	return true
}

// TestNoninterference probes Redactors the way the attack did — guesses
// that are prefixes of a secret's forms, each followed by a Flush — and
// checks that two vaults of one shape cannot be told apart.
func TestNoninterference(t *testing.T) {
	rng := rand.New(rand.NewPCG(23, 1))
	encs := []Encoding{AllEncodings, Raw, Raw | Base64, Hex | Percent, JSON, HTML, UTF16}
	compared := 0
	for iter := 0; iter < 400; iter++ {
		a, b := randomSecrets(rng)
		both := slices.Concat(a, b)
		in := nearMisses(rng, both, nil, 1+rng.IntN(12))
		cuts := make([]int, rng.IntN(len(in)+1))
		for i := range cuts {
			cuts[i] = rng.IntN(len(in) + 1)
		}
		slices.Sort(cuts)
		if checkNoninterference(t, a, b, encs[iter%len(encs)], in, cuts) {
			compared++
		}
	}
	if compared < 300 {
		t.Fatalf("only %d of 400 inputs were free of both vaults' secrets", compared)
	}
}

// TestNoninterferencePrefixProbe is the attack itself: one request per
// guess, a guess being a prefix of the real key followed by one more
// character, flushed. Under the old hold-back, the right guess stayed back
// and a wrong one came out at once.
func TestNoninterferencePrefixProbe(t *testing.T) {
	secret := []byte("k7Qp2ZxV9mLr4TbN8wYs")
	other := []byte("Jd3Hq8LmPz1Vx7Rc5Ga0")
	ra, _ := New([][]byte{secret}, Options{})
	rb, _ := New([][]byte{other}, Options{})
	for i := 1; i < len(secret); i++ {
		for _, c := range []byte("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789") {
			guess := append([]byte("data: "), secret[:i-1]...)
			guess = append(guess, c)
			_, ta := flushTrace(t, ra, guess, []int{len(guess)})
			_, tb := flushTrace(t, rb, guess, []int{len(guess)})
			if ta[0] != tb[0] {
				t.Fatalf("guess %q: released %d bytes under the real key, %d under another", guess, ta[0], tb[0])
			}
		}
	}
}

// TestWindowIsPublic: the window, which bounds every hold-back, depends on
// the secrets' lengths (and where their line breaks fall) alone, and is
// wide enough for every form of them.
func TestWindowIsPublic(t *testing.T) {
	rng := rand.New(rand.NewPCG(23, 2))
	for iter := 0; iter < 300; iter++ {
		a, _ := randomSecrets(rng)
		for _, enc := range []Encoding{AllEncodings, Raw, UTF16, Hex, Base64, Percent, JSON, HTML, Raw | Base64} {
			r, err := New(a, Options{Encodings: enc})
			if err != nil {
				t.Fatal(err)
			}
			lines, multiline := splitLines(a)
			want := 0
			for _, s := range lines {
				want = max(want, publicSpan(len(s), enc))
			}
			for _, s := range multiline {
				want = max(want, publicSpan(len(s), enc&printableForms))
			}
			if got := r.Window(); got != want {
				t.Fatalf("secrets %q, encodings %#x: window %d, want %d (a form wider than publicSpan allows)", a, enc, got, want)
			}
		}
	}
}

// exactGrowStart is the hold-back the Writer used to compute, now the
// oracle its public hold-back must cover: the first position from which
// the end of in could still grow into a hit, or len(in).
func exactGrowStart(r *Redactor, in []byte) int {
	for i := 0; i < len(in); i++ {
		t := in[i:]
		for pi := range r.m.pats {
			p := &r.m.pats[pi]
			if prefixOf(p, t) || p.back && p.alpha[t[0]] && prefixOf(p, t[1:]) {
				return i
			}
		}
	}
	start := len(in)
	for _, v := range r.views {
		v.anchors(in, 0, false, func(p, runStart int) bool {
			for s := runStart; s <= p; s++ {
				if v.walk(in, s, p, false, func(int) {}) {
					start = min(start, s)
					return false
				}
			}
			return true
		})
	}
	return start
}

// prefixOf reports whether t is a proper prefix of p's core.
func prefixOf(p *pattern, t []byte) bool {
	if len(t) >= len(p.core) {
		return false
	}
	if p.fold {
		return equalFold(t, p.core[:len(t)])
	}
	return bytes.HasPrefix(p.core, t)
}

// TestFlushHoldsWhateverCouldGrow: the public hold-back is never shorter
// than what could still become a hit, so a Flush never releases the
// beginning of a secret whose rest is yet to come.
func TestFlushHoldsWhateverCouldGrow(t *testing.T) {
	rng := rand.New(rand.NewPCG(23, 3))
	for iter := 0; iter < 300; iter++ {
		a, _ := randomSecrets(rng)
		r, err := New(a, Options{})
		if err != nil {
			t.Fatal(err)
		}
		in := nearMisses(rng, a, nil, 1+rng.IntN(6))
		for k := 0; k <= len(in); k++ {
			grow := exactGrowStart(r, in[:k])
			if grow < k-r.Window()+1 {
				t.Fatalf("%q could grow into a hit from %d, more than a window (%d) before its end", in[:k], grow, r.Window())
			}
			w := r.NewWriter(new(bytes.Buffer))
			_, _ = w.Write(in[:k])
			_ = w.Flush()
			if w.base > int64(grow) {
				t.Fatalf("secrets %q: Flush after %q released input up to %d, but it could grow into a hit from %d", a, in[:k], w.base, grow)
			}
		}
	}
}

// FuzzNoninterference: the fuzzer's bytes, interleaved with near misses of
// two same-shaped vaults' secrets and cut where the seed says, are
// released at the same points under both.
func FuzzNoninterference(f *testing.F) {
	f.Add([]byte("data: {\"token\":\"ghp_\"}\n\n"), uint64(1))
	f.Add([]byte("hello world"), uint64(2))
	f.Add([]byte("%2B%2F&#x41;\\u0041"), uint64(3))
	f.Fuzz(func(t *testing.T, filler []byte, seed uint64) {
		rng := rand.New(rand.NewPCG(seed, seed>>9))
		a, b := randomSecrets(rng)
		in := nearMisses(rng, slices.Concat(a, b), filler, 1+rng.IntN(10))
		in = append(in, filler...)
		cuts := make([]int, rng.IntN(min(len(in), 48)+1))
		for i := range cuts {
			cuts[i] = rng.IntN(len(in) + 1)
		}
		slices.Sort(cuts)
		encs := []Encoding{AllEncodings, Raw, Raw | Base64 | Hex, Percent | JSON | HTML, UTF16}
		checkNoninterference(t, a, b, encs[seed%uint64(len(encs))], in, cuts)
	})
}
