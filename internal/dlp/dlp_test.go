package dlp

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"regexp/syntax"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/slapenir/slapenir/internal/testutil/dlpsamples"
)

func TestEachRuleFindsItsFormat(t *testing.T) {
	s := New(nil)
	seen := map[string]bool{}
	for _, c := range dlpsamples.Secrets {
		seen[c.Rule] = true
		for _, text := range []string{c.Text, "before " + c.Text + " after", "\n" + c.Text + "\n"} {
			if got := s.Scan([]byte(text)); got != c.Rule {
				t.Errorf("Scan(%q) = %q, want %q", text, got, c.Rule)
			}
			if got := s.ScanString(text); got != c.Rule {
				t.Errorf("ScanString(%q) = %q, want %q", text, got, c.Rule)
			}
		}
	}
	for _, name := range Rules() {
		if !seen[name] {
			t.Errorf("rule %s has no sample", name)
		}
	}
	for _, text := range dlpsamples.Benign {
		if got := s.Scan([]byte(text)); got != "" {
			t.Errorf("Scan(%q) = %q, want nothing", text, got)
		}
	}
}

// TestPlaceholdersNeverMatch: the proxy's placeholders, including
// format-preserving ones shaped exactly like the keys they stand for, are
// sent on purpose and never a finding; a real key beside one still is.
func TestPlaceholdersNeverMatch(t *testing.T) {
	formatPreserving := "ghp_" + strings.Repeat("PhX1", 9)
	openai := "sk-proj-" + strings.Repeat("PhX-", 10)
	s := New([]string{"DUMMY_GITHUB_TOKEN", formatPreserving, openai, "SLAPENIR_" + dlpsamples.Randomish})
	for _, text := range []string{
		"Authorization: Bearer " + formatPreserving,
		"token=" + formatPreserving + "&x=1",
		`{"key":"` + openai + `"}`,
		"X-Api-Key: SLAPENIR_" + dlpsamples.Randomish,
		"api_key=" + "SLAPENIR_" + dlpsamples.Randomish,
	} {
		if got := s.Scan([]byte(text)); got != "" {
			t.Errorf("a placeholder in %q matched %s", text, got)
		}
	}
	real := "ghp_" + strings.Repeat("aB3d", 9)
	if got := s.Scan([]byte(formatPreserving + " " + real)); got != "github_token" {
		t.Errorf("a real key after a placeholder: %q", got)
	}
}

// splitReader returns src in two reads, cut at at.
type splitReader struct {
	src []byte
	at  int
}

func (r *splitReader) Read(p []byte) (int, error) {
	if len(r.src) == 0 {
		return 0, io.EOF
	}
	n := len(r.src)
	if r.at > 0 && r.at < n {
		n = r.at
	}
	n = copy(p, r.src[:n])
	r.src, r.at = r.src[n:], r.at-n
	return n, nil
}

// TestReaderFindsSecretsSplitAcrossReads: a secret anywhere in a stream,
// cut at every place, is found before any of it is passed on.
func TestReaderFindsSecretsSplitAcrossReads(t *testing.T) {
	s := New(nil)
	pad := strings.Repeat("some ordinary request text, ", 30) // past one Window; ends in a space
	for _, c := range dlpsamples.Secrets {
		stream := pad + c.Text + " " + pad
		start := len(pad)
		check := func(how string, src io.Reader) {
			t.Helper()
			r := s.NewReader(src, true)
			out, err := io.ReadAll(r)
			var f *Finding
			if !errors.As(err, &f) || f.Rule != c.Rule {
				t.Fatalf("%s, %q: %v, want a %s finding", how, c.Text, err, c.Rule)
			}
			if len(out) > start {
				t.Fatalf("%s, %q: %d bytes passed on, the secret starts at %d", how, c.Text, len(out), start)
			}
			if strings.Contains(err.Error(), c.Text) {
				t.Fatal("the finding quotes the value")
			}
		}
		for at := start - 2; at <= start+len(c.Text)+2; at++ {
			check(fmt.Sprintf("cut at %d", at), &splitReader{src: []byte(stream), at: at})
		}
		check("one byte a read", iotest.OneByteReader(strings.NewReader(stream)))
		// Report mode passes everything on and names the rule.
		r := s.NewReader(strings.NewReader(stream), false)
		out, err := io.ReadAll(r)
		if err != nil || string(out) != stream || len(r.Found()) != 1 || r.Found()[0] != c.Rule {
			t.Errorf("report mode on %q: %v, found %v, output intact %v", c.Text, err, r.Found(), string(out) == stream)
		}
	}
	for _, text := range dlpsamples.Benign {
		stream := strings.Repeat(text+"\n", 50)
		r := s.NewReader(iotest.HalfReader(strings.NewReader(stream)), true)
		out, err := io.ReadAll(r)
		if err != nil || string(out) != stream {
			t.Errorf("benign %q through the reader: %v (intact %v)", text, err, string(out) == stream)
		}
	}
}

// TestRulesFitTheWindow: the longest match of every rule fits in Window,
// the bound the Reader's guarantee rests on.
func TestRulesFitTheWindow(t *testing.T) {
	for _, r := range rules {
		re, err := syntax.Parse(r.re.String(), syntax.Perl)
		if err != nil {
			t.Fatal(err)
		}
		n := maxLen(re.Simplify())
		if n < 0 || n >= Window {
			t.Errorf("rule %s: longest match %d bytes (-1: unbounded), want under Window (%d)", r.name, n, Window)
		}
	}
}

// maxLen is the most bytes re can match, -1 for no bound.
func maxLen(re *syntax.Regexp) int {
	switch re.Op {
	case syntax.OpLiteral:
		n := 0
		for _, c := range re.Rune {
			n += runeLen(c, re.Flags&syntax.FoldCase != 0)
		}
		return n
	case syntax.OpCharClass, syntax.OpAnyCharNotNL, syntax.OpAnyChar:
		widest := 1
		for i := 1; i < len(re.Rune); i += 2 {
			widest = max(widest, runeLen(re.Rune[i], false))
		}
		if re.Op != syntax.OpCharClass {
			widest = 4
		}
		return widest
	case syntax.OpStar, syntax.OpPlus:
		return -1
	case syntax.OpRepeat:
		sub := maxLen(re.Sub[0])
		if re.Max < 0 || sub < 0 {
			return -1
		}
		return re.Max * sub
	case syntax.OpQuest, syntax.OpCapture:
		return maxLen(re.Sub[0])
	case syntax.OpConcat:
		n := 0
		for _, s := range re.Sub {
			m := maxLen(s)
			if m < 0 {
				return -1
			}
			n += m
		}
		return n
	case syntax.OpAlternate:
		n := 0
		for _, s := range re.Sub {
			m := maxLen(s)
			if m < 0 {
				return -1
			}
			n = max(n, m)
		}
		return n
	}
	return 0 // empty-width: boundaries, anchors
}

func runeLen(c rune, fold bool) int {
	if fold {
		return 3 // the widest case fold of an ASCII letter (K, the Kelvin sign)
	}
	switch {
	case c < 0x80:
		return 1
	case c < 0x800:
		return 2
	case c < 0x10000:
		return 3
	}
	return 4
}

// FuzzReader: whatever the bytes and however they are cut, report mode
// passes them on unchanged, and a secret Scan finds in the whole is found
// by the stream in enforce mode before it is passed on.
func FuzzReader(f *testing.F) {
	for _, c := range dlpsamples.Secrets {
		f.Add([]byte("x "+c.Text+" y"), uint16(3))
	}
	for _, b := range dlpsamples.Benign {
		f.Add([]byte(b), uint16(7))
	}
	f.Fuzz(func(t *testing.T, data []byte, cut uint16) {
		s := New([]string{"DUMMY_GITHUB_TOKEN"})
		out, err := io.ReadAll(s.NewReader(&splitReader{src: data, at: int(cut) % (len(data) + 1)}, false))
		if err != nil || !bytes.Equal(out, data) {
			t.Fatalf("report mode changed the stream: %v", err)
		}
		whole := s.Scan(data)
		out, err = io.ReadAll(s.NewReader(iotest.HalfReader(&splitReader{src: data, at: int(cut) % (len(data) + 1)}), true))
		if whole != "" && err == nil {
			t.Fatalf("Scan finds %s in the whole, the stream nothing", whole)
		}
		if err == nil && !bytes.Equal(out, data) {
			t.Fatal("enforce mode without a finding changed the stream")
		}
	})
}

// benchText is code and prose with key-like names but no secret: what
// scanning costs on an ordinary request (the rules' anchors match, the
// expressions run, nothing is found).
var benchText = []byte(strings.Repeat(`func (s *Server) handle(w http.ResponseWriter, r *http.Request) { token := r.Header.Get("Authorization"); if token == "" { return } } // fix the auth check: api_key and secret handling `+"\n", 40))

func BenchmarkScan(b *testing.B) {
	s := New([]string{"DUMMY_GITHUB_TOKEN"})
	b.SetBytes(int64(len(benchText)))
	b.ReportAllocs()
	for b.Loop() {
		if s.Scan(benchText) != "" {
			b.Fatal("a finding in the benchmark text")
		}
	}
}

// BenchmarkScanHeaders is the scan of a request's usual headers.
func BenchmarkScanHeaders(b *testing.B) {
	s := New([]string{"DUMMY_GITHUB_TOKEN"})
	headers := []string{"Content-Type: application/json", "Authorization: Bearer DUMMY_GITHUB_TOKEN", "User-Agent: aider/0.86 litellm/1.74", "Accept: application/json", "Accept-Encoding: gzip"}
	b.ReportAllocs()
	for b.Loop() {
		for _, h := range headers {
			if s.ScanString(h) != "" {
				b.Fatal("a finding in a header")
			}
		}
	}
}

func BenchmarkReader(b *testing.B) {
	s := New(nil)
	stream := bytes.Repeat(benchText, 64) // ~640 KB
	b.SetBytes(int64(len(stream)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := io.Copy(io.Discard, s.NewReader(bytes.NewReader(stream), true)); err != nil {
			b.Fatal(err)
		}
	}
}
