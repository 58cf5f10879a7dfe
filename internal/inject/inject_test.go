package inject

import (
	"bytes"
	"errors"
	"io"
	"maps"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
)

var testPairs = []Pair{
	{[]byte("DUMMY_GITHUB"), []byte("ghp_realGitHubToken0123456789")},
	{[]byte("DUMMY_GITHUB_ENTERPRISE"), []byte("ghe_realEnterprise")},
	{[]byte("sk-DUMMYDUMMYDUMMY"), []byte("sk-realOpenAIkey")},
	// A value that contains another placeholder must not be rescanned.
	{[]byte("DUMMY_TRICKY"), []byte("value-with-DUMMY_GITHUB-inside")},
}

func allowAll(int) bool { return true }

func mustNew(t testing.TB) *Injector {
	t.Helper()
	in, err := New(testPairs)
	if err != nil {
		t.Fatal(err)
	}
	return in
}

// reference is the one-shot definition the Writer must agree with, written
// independently: at each position take the longest placeholder that starts
// there, else copy one byte.
func reference(in []byte, allow func(int) bool) ([]byte, Used) {
	var out []byte
	inj, foreign := map[int]bool{}, map[int]bool{}
	for i := 0; i < len(in); {
		best := -1
		for k, p := range testPairs {
			if bytes.HasPrefix(in[i:], p.Placeholder) && (best < 0 || len(p.Placeholder) > len(testPairs[best].Placeholder)) {
				best = k
			}
		}
		if best < 0 {
			out = append(out, in[i])
			i++
			continue
		}
		if allow(best) {
			out = append(out, testPairs[best].Value...)
			inj[best] = true
		} else {
			out = append(out, testPairs[best].Placeholder...)
			foreign[best] = true
		}
		i += len(testPairs[best].Placeholder)
	}
	return out, Used{Injected: slices.Sorted(maps.Keys(inj)), Foreign: slices.Sorted(maps.Keys(foreign))}
}

func TestReplace(t *testing.T) {
	in := mustNew(t)
	onlyGitHub := func(i int) bool { return i == 0 }
	tests := []struct {
		name  string
		in    string
		allow func(int) bool
		want  string
		used  Used
	}{
		{"bearer header", "Bearer DUMMY_GITHUB", allowAll, "Bearer ghp_realGitHubToken0123456789", Used{Injected: []int{0}}},
		{"longest wins", "x=DUMMY_GITHUB_ENTERPRISE&y=DUMMY_GITHUB", allowAll, "x=ghe_realEnterprise&y=ghp_realGitHubToken0123456789", Used{Injected: []int{0, 1}}},
		{"foreign host keeps placeholder", `{"k":"sk-DUMMYDUMMYDUMMY","g":"DUMMY_GITHUB"}`, onlyGitHub, `{"k":"sk-DUMMYDUMMYDUMMY","g":"ghp_realGitHubToken0123456789"}`, Used{Injected: []int{0}, Foreign: []int{2}}},
		{"values are not rescanned", "DUMMY_TRICKY", allowAll, "value-with-DUMMY_GITHUB-inside", Used{Injected: []int{3}}},
		{"nil allow refuses all", "DUMMY_GITHUB", nil, "DUMMY_GITHUB", Used{Foreign: []int{0}}},
		{"near misses untouched", "DUMMY_GITHU DUMMY_ dummy_github", allowAll, "DUMMY_GITHU DUMMY_ dummy_github", Used{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, used := in.Replace([]byte(tt.in), tt.allow)
			if string(got) != tt.want {
				t.Fatalf("got %q, want %q", got, tt.want)
			}
			if !slices.Equal(used.Injected, tt.used.Injected) || !slices.Equal(used.Foreign, tt.used.Foreign) {
				t.Fatalf("used %+v, want %+v", used, tt.used)
			}
		})
	}
}

func TestNewRefusesBadPairs(t *testing.T) {
	for _, tt := range []struct {
		name  string
		pairs []Pair
		want  string
	}{
		{"short placeholder", []Pair{{[]byte("DUMMY"), []byte("secretvalue")}}, "placeholder #1"},
		{"empty value", []Pair{{[]byte("DUMMY_X"), nil}}, "empty value"},
		{"duplicate", []Pair{{[]byte("DUMMY_X"), []byte("secretvalue1")}, {[]byte("DUMMY_X"), []byte("secretvalue2")}}, "#1 and #2"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := New(tt.pairs)
			if err == nil || !strings.Contains(err.Error(), tt.want) || strings.Contains(err.Error(), "secretvalue") {
				t.Fatalf("error %v: want one mentioning %q and no value", err, tt.want)
			}
		})
	}
}

// plant makes random request-like data with placeholders and their prefixes.
func plant(rng *rand.Rand) []byte {
	var b []byte
	const filler = "DUMYGITHUBsk-_ ={}\":&xyz"
	for k := rng.IntN(6); k >= 0; k-- {
		for n := rng.IntN(20); n > 0; n-- {
			b = append(b, filler[rng.IntN(len(filler))])
		}
		ph := testPairs[rng.IntN(len(testPairs))].Placeholder
		if rng.IntN(3) == 0 {
			ph = ph[:rng.IntN(len(ph))] // a prefix that never completes
		}
		b = append(b, ph...)
	}
	return b
}

// stream writes in cut at cuts, flushing after each piece, and checks that
// the output so far is always a prefix of want.
func stream(t testing.TB, inj *Injector, in []byte, cuts []int, allow func(int) bool, want []byte) ([]byte, Used) {
	t.Helper()
	var out bytes.Buffer
	w := inj.NewWriter(&out, allow)
	prev := 0
	for _, c := range append(cuts, len(in)) {
		if _, err := w.Write(in[prev:c]); err != nil {
			t.Fatal(err)
		}
		if err := w.Flush(); err != nil {
			t.Fatal(err)
		}
		prev = c
		if !bytes.HasPrefix(want, out.Bytes()) {
			t.Fatalf("output after cut %d is not a prefix of the expected output:\n got %q\nwant %q", c, out.Bytes(), want)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return out.Bytes(), w.Used()
}

func TestPropertyEverySplit(t *testing.T) {
	inj := mustNew(t)
	rng := rand.New(rand.NewPCG(1, 2))
	allows := []func(int) bool{allowAll, func(i int) bool { return i%2 == 1 }}
	for iter := 0; iter < 150; iter++ {
		in := plant(rng)
		allow := allows[iter%2]
		want, wantUsed := reference(in, allow)
		for cut := 0; cut <= len(in); cut++ {
			got, used := stream(t, inj, in, []int{cut}, allow, want)
			if !bytes.Equal(got, want) || !slices.Equal(used.Injected, wantUsed.Injected) || !slices.Equal(used.Foreign, wantUsed.Foreign) {
				t.Fatalf("cut %d of %q:\n got %q %+v\nwant %q %+v", cut, in, got, used, want, wantUsed)
			}
		}
		cuts := make([]int, rng.IntN(len(in)+1))
		for i := range cuts {
			cuts[i] = rng.IntN(len(in) + 1)
		}
		slices.Sort(cuts)
		if got, _ := stream(t, inj, in, cuts, allow, want); !bytes.Equal(got, want) {
			t.Fatalf("cuts %v of %q:\n got %q\nwant %q", cuts, in, got, want)
		}
	}
}

// TestHoldsBackOnlyAPlaceholderPrefix: after a Write, only a trailing proper
// prefix of a placeholder is still held.
func TestHoldsBackOnlyAPlaceholderPrefix(t *testing.T) {
	inj := mustNew(t)
	for _, tt := range []struct{ in, emitted string }{
		{"data: hello\n", "data: hello\n"},
		{"token=DUMMY_GIT", "token="},
		{"token=DUMMY_GITHUB", "token="}, // might still become DUMMY_GITHUB_ENTERPRISE
		{"token=DUMMY_GITHUB&", "token=ghp_realGitHubToken0123456789&"},
		{"x sk-", "x "},
	} {
		var out bytes.Buffer
		w := inj.NewWriter(&out, allowAll)
		if _, err := w.Write([]byte(tt.in)); err != nil {
			t.Fatal(err)
		}
		if out.String() != tt.emitted {
			t.Errorf("Write(%q) passed on %q, want %q", tt.in, out.String(), tt.emitted)
		}
	}
}

func TestMemoryStaysFlat(t *testing.T) {
	inj := mustNew(t)
	w := inj.NewWriter(io.Discard, allowAll)
	bufCap := cap(w.buf)
	chunk := bytes.Repeat([]byte(`{"auth":"DUMMY_GITHUB","pad":"DUMMY_GIT"}`), 3000)
	rng := rand.New(rand.NewPCG(3, 4))
	for total := 0; total < 16<<20; {
		n := 1 + rng.IntN(len(chunk))
		if _, err := w.Write(chunk[:n]); err != nil {
			t.Fatal(err)
		}
		total += n
		if cap(w.buf) != bufCap || cap(w.out) > 4*bufCap {
			t.Fatalf("buffers grew: buf %d (was %d), out %d", cap(w.buf), bufCap, cap(w.out))
		}
	}
}

type failWriter struct{ err error }

func (f failWriter) Write([]byte) (int, error) { return 0, f.err }

func TestWriterErrors(t *testing.T) {
	inj := mustNew(t)
	boom := errors.New("upstream closed")
	w := inj.NewWriter(failWriter{boom}, allowAll)
	if _, err := w.Write([]byte("body DUMMY_GITHUB.")); !errors.Is(err, boom) {
		t.Fatalf("Write: %v", err)
	}
	if err := w.Close(); !errors.Is(err, boom) {
		t.Fatalf("Close: %v", err)
	}
	if _, err := w.Write([]byte("x")); err == nil {
		t.Fatal("Write after Close succeeded")
	}
}

// TestBasicAuthReachesServer sends what git sends (Basic with the
// placeholder as password) through Basic and checks a real HTTP server on
// loopback sees the real token.
func TestBasicAuthReachesServer(t *testing.T) {
	inj := mustNew(t)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		user, pass, ok := r.BasicAuth()
		if !ok || user != "x-access-token" || pass != "ghp_realGitHubToken0123456789" {
			http.Error(w, "bad credentials", http.StatusUnauthorized)
			return
		}
		io.WriteString(w, "welcome")
	}))
	defer srv.Close()

	for _, tt := range []struct {
		name   string
		allow  func(int) bool
		status int
	}{{"own host", allowAll, 200}, {"foreign host", func(int) bool { return false }, 401}} {
		t.Run(tt.name, func(t *testing.T) {
			req, err := http.NewRequest("GET", srv.URL+"/repo.git/info/refs", nil)
			if err != nil {
				t.Fatal(err)
			}
			req.SetBasicAuth("x-access-token", "DUMMY_GITHUB")
			v, used := inj.Basic(req.Header.Get("Authorization"), tt.allow)
			req.Header.Set("Authorization", v)
			resp, err := srv.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != tt.status {
				t.Fatalf("status %d, want %d (used %+v)", resp.StatusCode, tt.status, used)
			}
			if tt.status == 200 && !slices.Equal(used.Injected, []int{0}) || tt.status == 401 && !slices.Equal(used.Foreign, []int{0}) {
				t.Fatalf("used %+v", used)
			}
		})
	}
}

func TestBasicLeavesOtherValuesAlone(t *testing.T) {
	inj := mustNew(t)
	for _, v := range []string{"Bearer DUMMY_GITHUB", "Basic !!!not-base64", "Basic"} {
		if got, used := inj.Basic(v, allowAll); got != v || len(used.Injected) != 0 {
			t.Errorf("Basic(%q) = %q, %+v", v, got, used)
		}
	}
}

// TestConcurrentStreams: one Injector serves many requests at once; run
// under -race.
func TestConcurrentStreams(t *testing.T) {
	inj := mustNew(t)
	in := bytes.Repeat([]byte(`{"a":"DUMMY_GITHUB","b":"DUMMY_GITHUB_ENTERPRISE"}`+"\n"), 200)
	want, _ := reference(in, allowAll)
	errs := make(chan bool, 8)
	for g := 0; g < 8; g++ {
		go func() {
			var out bytes.Buffer
			w := inj.NewWriter(&out, allowAll)
			for off := 0; off < len(in); off += 29 {
				w.Write(in[off:min(off+29, len(in))])
			}
			w.Close()
			errs <- bytes.Equal(out.Bytes(), want)
		}()
	}
	for g := 0; g < 8; g++ {
		if !<-errs {
			t.Fatal("a concurrent stream's output differs from the one-shot result")
		}
	}
}

// TestReplaceStringAllocatesNothingWithoutAPlaceholder: every header of
// every request to a credential's host goes through ReplaceString.
func TestReplaceStringAllocatesNothingWithoutAPlaceholder(t *testing.T) {
	inj, err := New(testPairs)
	if err != nil {
		t.Fatal(err)
	}
	allow := func(int) bool { return true }
	v := "Mozilla/5.0 (X11; Linux x86_64) curl/8.5.0 application/json; charset=utf-8"
	if n := testing.AllocsPerRun(100, func() { _, _ = inj.ReplaceString(v, allow) }); n != 0 {
		t.Fatalf("ReplaceString allocates %v times for a value without a placeholder", n)
	}
	if got, used := inj.ReplaceString("Bearer DUMMY_GITHUB", allow); got != "Bearer ghp_realGitHubToken0123456789" || len(used.Injected) != 1 {
		t.Fatalf("ReplaceString = %q, %+v", got, used)
	}
}
