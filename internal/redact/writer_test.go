package redact

import (
	"bytes"
	"errors"
	"io"
	"math/rand/v2"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
)

func mustNew(t testing.TB, secrets ...string) *Redactor {
	t.Helper()
	var bs [][]byte
	for _, s := range secrets {
		bs = append(bs, []byte(s))
	}
	r, err := New(bs, Options{})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// TestFlushKeepsBackTheTrailingRun pins down what Flush keeps back: the
// trailing run of bytes an encoded secret could be made of, whether or not
// they begin the real one.
func TestFlushKeepsBackTheTrailingRun(t *testing.T) {
	r := mustNew(t, "ghp_SECRETTOKEN42")
	tests := []struct {
		name, in, emitted string
	}{
		{"text ending in punctuation", `{"token":"x"}` + "\n", `{"token":"x"}` + "\n"},
		{"a prefix of the secret", "say ghp_SEC", "say "},
		// A wrong guess is kept back just the same: when it arrives must
		// not tell the agent which guesses begin the secret.
		{"a guess that begins no secret", "say ghp_XYZ", "say "},
		{"a prefix of its hex form", "id: 6768705f53", "id: "},
		{"a word", "hello there", "hello "},
		{"SSE event", "data: {\"t\":\"ghp_SE\"}\n\n", "data: {\"t\":\"ghp_SE\"}\n\n"},
		{"a whole secret", "x ghp_SECRETTOKEN42 y\n", "x [REDACTED] y\n"},
		// Its base64 form may still be followed by secret-carrying
		// characters and padding, so the redaction waits.
		{"base64 with open tail", "a Z2hwX1NFQ1JFVFRPS0VONDI", "a "},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out bytes.Buffer
			w := r.NewWriter(&out)
			if _, err := w.Write([]byte(tt.in)); err != nil {
				t.Fatal(err)
			}
			if err := w.Flush(); err != nil {
				t.Fatal(err)
			}
			if out.String() != tt.emitted {
				t.Fatalf("after Flush got %q, want %q", out.String(), tt.emitted)
			}
		})
	}
}

// TestWriteHoldsBackLessThanAWindow: without Flush a Write passes on all
// but at most Window()-1 bytes.
func TestWriteHoldsBackLessThanAWindow(t *testing.T) {
	r := mustNew(t, "ghp_SECRETTOKEN42")
	var out bytes.Buffer
	w := r.NewWriter(&out)
	in := strings.Repeat("ghp_SECRET", 100) // never completes the secret
	if _, err := w.Write([]byte(in)); err != nil {
		t.Fatal(err)
	}
	if held := len(in) - out.Len(); held > r.Window()-1 {
		t.Fatalf("Write kept back %d bytes, more than Window()-1 = %d", held, r.Window()-1)
	}
}

// TestMemoryStaysFlat streams 16 MiB dense with secrets in chunks of random
// size and checks the Writer's buffers never grow past their fixed size.
func TestMemoryStaysFlat(t *testing.T) {
	r := mustNew(t, "ghp_SECRETTOKEN42", "another-secret-value")
	w := r.NewWriter(io.Discard)
	bufCap := cap(w.buf)
	rng := rand.New(rand.NewPCG(3, 3))
	piece := []byte("log line ghp_SECRETTOKEN42 and YW5vdGhlci1zZWNyZXQtdmFsdWU= ok\n")
	chunk := bytes.Repeat(piece, 2000)
	total := 0
	for total < 16<<20 {
		n := 1 + rng.IntN(len(chunk))
		if _, err := w.Write(chunk[:n]); err != nil {
			t.Fatal(err)
		}
		total += n
		if cap(w.buf) != bufCap || cap(w.out) > 2*bufCap || len(w.regions) > bufCap {
			t.Fatalf("buffers grew: buf %d (was %d), out %d, regions %d", cap(w.buf), bufCap, cap(w.out), len(w.regions))
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if w.Count() < total/len(piece) {
		t.Fatalf("only %d replacements in %d bytes", w.Count(), total)
	}
}

func TestReaderRedactsAndStreams(t *testing.T) {
	r := mustNew(t, "ghp_SECRETTOKEN42")
	pr, pw := io.Pipe()
	rd := r.NewReader(pr)
	go func() {
		pw.Write([]byte(`{"a":"ghp_SECRET`))
		pw.Write([]byte(`TOKEN42"}` + "\n"))
		pw.Write([]byte(`{"done":true}` + "\n"))
		pw.Close()
	}()
	buf := make([]byte, 100)
	// The first object completes with the second write; the Reader must
	// hand it over without waiting for the end of the stream.
	var got []byte
	for !bytes.Contains(got, []byte("}\n")) {
		n, err := rd.Read(buf)
		if err != nil {
			t.Fatalf("Read: %v after %q", err, got)
		}
		got = append(got, buf[:n]...)
	}
	if string(got) != `{"a":"[REDACTED]"}`+"\n" {
		t.Fatalf("first line %q", got)
	}
	rest, err := io.ReadAll(rd)
	if err != nil || string(rest) != `{"done":true}`+"\n" {
		t.Fatalf("rest %q, %v", rest, err)
	}
	if rd.Count() != 1 {
		t.Fatalf("Count() = %d, want 1", rd.Count())
	}
}

func TestReaderDropsHeldBytesOnError(t *testing.T) {
	r := mustNew(t, "ghp_SECRETTOKEN42")
	boom := errors.New("upstream reset")
	src := io.MultiReader(strings.NewReader("ok ghp_SECRETTO"), iotestErr{boom})
	got, err := io.ReadAll(r.NewReader(src))
	if !errors.Is(err, boom) || string(got) != "ok " {
		t.Fatalf("got %q, %v; want the safe prefix and the upstream error", got, err)
	}
}

// TestReaderReuseCarriesNothingOver: Readers share pooled buffers, so a
// Reader closed while it still held back the start of a secret must leave
// nothing of it for the next one, and the closed one must not read again.
func TestReaderReuseCarriesNothingOver(t *testing.T) {
	r := mustNew(t, "ghp_SECRETTOKEN42")
	first := r.NewReader(strings.NewReader("one ghp_SECRETTOKEN42 two ghp_SECRETTO"))
	buf := make([]byte, 8)
	if _, err := first.Read(buf); err != nil {
		t.Fatal(err)
	}
	if err := first.Close(); err != nil {
		t.Fatal(err)
	}
	if n, err := first.Read(buf); n != 0 || err == nil {
		t.Fatalf("Read after Close = %d, %v; want an error", n, err)
	}
	if first.Count() != 1 {
		t.Fatalf("Count() after Close = %d, want 1", first.Count())
	}
	for i := 0; i < 3; i++ {
		got, err := io.ReadAll(r.NewReader(strings.NewReader("KEN42 fresh")))
		if err != nil || string(got) != "KEN42 fresh" {
			t.Fatalf("reader %d after a closed one: %q, %v", i, got, err)
		}
	}
	// Many goroutines taking and giving back Readers (under -race).
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 50; i++ {
				rd := r.NewReader(strings.NewReader("a ghp_SECRETTOKEN42 b"))
				got, err := io.ReadAll(rd)
				rd.Close()
				if err != nil || string(got) != "a [REDACTED] b" || rd.Count() != 1 {
					t.Errorf("got %q, %v, count %d", got, err, rd.Count())
					return
				}
			}
		}()
	}
	wg.Wait()
}

type iotestErr struct{ err error }

func (e iotestErr) Read([]byte) (int, error) { return 0, e.err }

type failWriter struct{ err error }

func (f failWriter) Write([]byte) (int, error) { return 0, f.err }

func TestWriterErrors(t *testing.T) {
	r := mustNew(t, "ghp_SECRETTOKEN42")
	boom := errors.New("client went away")
	w := r.NewWriter(failWriter{boom})
	if _, err := w.Write(bytes.Repeat([]byte("x"), 1000)); !errors.Is(err, boom) {
		t.Fatalf("Write: %v, want the destination's error", err)
	}
	if _, err := w.Write([]byte("more")); !errors.Is(err, boom) {
		t.Fatalf("second Write: %v, want the same error again", err)
	}
	w2 := r.NewWriter(io.Discard)
	if err := w2.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := w2.Write([]byte("late")); err == nil {
		t.Fatal("Write after Close succeeded")
	}
}

// TestFlushFlushesDestination: the proxy hands an http.ResponseWriter over;
// Flush must reach the client.
func TestFlushFlushesDestination(t *testing.T) {
	r := mustNew(t, "ghp_SECRETTOKEN42")
	rec := httptest.NewRecorder()
	w := r.NewWriter(rec)
	if _, err := w.Write([]byte("data: ghp_SECRETTOKEN42\n\n")); err != nil {
		t.Fatal(err)
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	if !rec.Flushed || rec.Body.String() != "data: [REDACTED]\n\n" {
		t.Fatalf("flushed %v, body %q", rec.Flushed, rec.Body.String())
	}
}

// TestConcurrentStreams: one Redactor serves many streams at once (the proxy
// shares it across connections); run under -race.
func TestConcurrentStreams(t *testing.T) {
	r := mustNew(t, "ghp_SECRETTOKEN42")
	in := []byte(strings.Repeat("data: ghp_SECRETTOKEN42 Z2hwX1NFQ1JFVFRPS0VONDI=\n", 200))
	want, wantN := r.Redact(in)
	errs := make(chan string, 8)
	for g := 0; g < 8; g++ {
		go func() {
			var out bytes.Buffer
			w := r.NewWriter(&out)
			for off := 0; off < len(in); off += 37 {
				w.Write(in[off:min(off+37, len(in))])
				w.Flush()
			}
			w.Close()
			if !bytes.Equal(out.Bytes(), want) || w.Count() != wantN {
				errs <- "a concurrent stream's output differs from the one-shot result"
				return
			}
			errs <- ""
		}()
	}
	for g := 0; g < 8; g++ {
		if e := <-errs; e != "" {
			t.Fatal(e)
		}
	}
}

// TestRedactStringAllocatesNothingWithoutAHit: every header of every
// response from a credential's host goes through RedactString.
func TestRedactStringAllocatesNothingWithoutAHit(t *testing.T) {
	r := mustNew(t, "ghp_SECRETTOKEN42")
	v := "Thu, 03 Dec 2026 08:34:59 GMT; text/html; charset=utf-8 %20 &amp; \\u0041"
	if n := testing.AllocsPerRun(100, func() { _, _ = r.RedactString(v) }); n != 0 {
		t.Fatalf("RedactString allocates %v times for a value without a hit", n)
	}
	if got, n := r.RedactString("x ghp_SECRETTOKEN42 y"); got != "x [REDACTED] y" || n != 1 {
		t.Fatalf("RedactString = %q, %d", got, n)
	}
}
