package redact

import (
	"bytes"
	"fmt"
	"io"
	"math/rand/v2"
	"runtime"
	"strings"
	"testing"
)

// benchSecrets returns n token-shaped secrets like the ones a vault holds.
func benchSecrets(n int) [][]byte {
	rng := rand.New(rand.NewPCG(uint64(n), 1))
	const alnum = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
	prefixes := []string{"ghp_", "sk-proj-", "xoxb-", "AKIA", "glpat-"}
	out := make([][]byte, n)
	for i := range out {
		out[i] = append([]byte(prefixes[i%len(prefixes)]), randBytes(rng, 24+rng.IntN(24), alnum)...)
	}
	return out
}

// ordinaryText is English-like prose with code, JSON and numbers: what an
// LLM or an API sends back.
func ordinaryText(size int) []byte {
	rng := rand.New(rand.NewPCG(2, 2))
	words := strings.Fields(`the proxy agent request response stream token model function
		return value error nil context package import struct interface field method
		{"role":"assistant","content":"Sure, here is the code"} 200 OK 404 0x1f
		https://api.github.com/repos/slapenir/slapenir/pulls?state=open&page=2
		Lorem ipsum dolor sit amet, consectetur adipiscing elit; 3.14159 2026-11-26`)
	var b strings.Builder
	for b.Len() < size {
		b.WriteString(words[rng.IntN(len(words))])
		if rng.IntN(12) == 0 {
			b.WriteString(".\n")
		} else {
			b.WriteByte(' ')
		}
	}
	return []byte(b.String()[:size])
}

// benchStream measures redacting text for secrets: each iteration streams it
// to io.Discard through a new Writer, 32 KiB per Write as the proxy writes.
func benchStream(b *testing.B, secrets [][]byte, text []byte) {
	r, err := New(secrets, Options{})
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(text)))
	b.ReportAllocs()
	for b.Loop() {
		w := r.NewWriter(io.Discard)
		for off := 0; off < len(text); off += 32 << 10 {
			if _, err := w.Write(text[off:min(off+32<<10, len(text))]); err != nil {
				b.Fatal(err)
			}
		}
		if err := w.Close(); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkWriter measures throughput on one core with every encoding on,
// writing 32 KiB at a time as the proxy does.
func BenchmarkWriter(b *testing.B) {
	text := ordinaryText(4 << 20)
	for _, n := range []int{1, 100, 1000} {
		b.Run(fmt.Sprintf("secrets=%d", n), func(b *testing.B) {
			benchStream(b, benchSecrets(n), text)
		})
	}
}

// BenchmarkWriterShortSecrets uses 100 secrets of the minimum length, which
// shortens the matcher's probe step from 13 to 5 bytes.
func BenchmarkWriterShortSecrets(b *testing.B) {
	secrets := benchSecrets(100)
	for i := range secrets {
		secrets[i] = secrets[i][len(secrets[i])-MinSecretLen:]
	}
	text := ordinaryText(4 << 20)
	benchStream(b, secrets, text)
}

// BenchmarkWriterSecretDense plants a secret every 4 KiB, the worst case a
// leaky upstream produces.
func BenchmarkWriterSecretDense(b *testing.B) {
	secrets := benchSecrets(100)
	text := ordinaryText(4 << 20)
	for off := 0; off+64 < len(text); off += 4 << 10 {
		copy(text[off:], secrets[off%len(secrets)])
	}
	benchStream(b, secrets, text)
}

// BenchmarkNew is the cost of compiling secrets, paid when the vault loads.
func BenchmarkNew(b *testing.B) {
	secrets := benchSecrets(1000)
	for b.Loop() {
		if _, err := New(secrets, Options{}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkTokenStream is an LLM stream: one small NDJSON line per token,
// each followed by Flush, with 1,000 secrets. It measures the cost Flush's
// "could this suffix still grow into a hit?" check adds per flush.
func BenchmarkTokenStream(b *testing.B) {
	r, err := New(benchSecrets(1000), Options{})
	if err != nil {
		b.Fatal(err)
	}
	line := []byte(`{"model":"qwen2.5-coder:7b","message":{"role":"assistant","content":" token"},"done":false}` + "\n")
	w := r.NewWriter(io.Discard)
	b.SetBytes(int64(len(line)))
	for b.Loop() {
		if _, err := w.Write(line); err != nil {
			b.Fatal(err)
		}
		if err := w.Flush(); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkWriterAdversarial is the worst case for the q-gram table: 100
// secrets sharing the "ghp_" prefix and input made of nothing but "ghp_",
// so every probe has 100 candidates to verify.
func BenchmarkWriterAdversarial(b *testing.B) {
	secrets := benchSecrets(500)
	var gh [][]byte
	for _, s := range secrets {
		if strings.HasPrefix(string(s), "ghp_") {
			gh = append(gh, s)
		}
	}
	text := []byte(strings.Repeat("ghp_", 1<<20))
	benchStream(b, gh, text)
}

// BenchmarkStream4GiB pushes 4 GiB with secrets sprinkled in through one
// Writer and reports the largest heap seen while doing so, to show memory
// stays flat over a long stream (issue 4). Run it alone:
// go test -run '^$' -bench Stream4GiB -benchtime 1x ./internal/redact/
func BenchmarkStream4GiB(b *testing.B) {
	secrets := benchSecrets(100)
	r, err := New(secrets, Options{})
	if err != nil {
		b.Fatal(err)
	}
	chunk := ordinaryText(1 << 20)
	for off := 0; off+64 < len(chunk); off += 64 << 10 {
		copy(chunk[off:], secrets[off%len(secrets)])
	}
	const total = 4 << 30
	b.SetBytes(total)
	for b.Loop() {
		var peak uint64
		var ms runtime.MemStats
		w := r.NewWriter(io.Discard)
		for sent := 0; sent < total; sent += len(chunk) {
			for off := 0; off < len(chunk); off += 32 << 10 {
				if _, err := w.Write(chunk[off : off+32<<10]); err != nil {
					b.Fatal(err)
				}
			}
			if sent%(256<<20) == 0 {
				runtime.ReadMemStats(&ms)
				peak = max(peak, ms.HeapInuse)
			}
		}
		if err := w.Close(); err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(float64(peak)/(1<<20), "peak-heap-MiB")
		b.ReportMetric(float64(w.Count()), "redactions")
	}
}

// BenchmarkWriterEscapedJSON is LLM output as JSON: content full of \n, \"
// and \u escapes, which the mixed-escape JSON view has to look at.
func BenchmarkWriterEscapedJSON(b *testing.B) {
	var sb strings.Builder
	for sb.Len() < 4<<20 {
		sb.WriteString(`{"message":{"content":"func main() {\n\tfmt.Println(\"hello \u00e9\")\n}\n// see C:\\go\\bin"},"done":false}` + "\n")
	}
	text := []byte(sb.String())
	benchStream(b, benchSecrets(100), text)
}

// BenchmarkWriterBinary is BenchmarkWriter on random bytes (a tarball, an
// image), where every escape character turns up once in 256 bytes.
func BenchmarkWriterBinary(b *testing.B) {
	data := make([]byte, 4<<20)
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range data {
		data[i] = byte(rng.Uint32())
	}
	for _, n := range []int{1, 100} {
		b.Run(fmt.Sprintf("secrets=%d", n), func(b *testing.B) {
			benchStream(b, benchSecrets(n), data)
		})
	}
}

// BenchmarkScanTimeBySecret measures the side channel the redactor leaves
// open (README, "Side channels"): the time it takes, unlike when it releases
// bytes, depends on the secret's value. Each probe is a response that holds
// no form of either of two tokens of one shape, scanned under a vault
// holding one (/A) and then the other (/B); the ratio of A to B is what an
// agent timing its own echoed responses could measure.
//
//	go test -run '^$' -bench BenchmarkScanTimeBySecret -count 5 ./internal/redact/
func BenchmarkScanTimeBySecret(b *testing.B) {
	vaultA := []byte("ghp_k3Zq9TfW2mXa7LpR4vYc8NsB1dHe6GjU5oQi")
	vaultB := []byte("ghp_Rw8Xc2NvL5tYb9KmQ3sZf7HjD1pGa4UeW6xo")
	var pieces []byte // 8-byte pieces of A's key: q-grams of the secret
	for i := 0; i+8 <= len(vaultA); i += 8 {
		pieces = append(append(pieces, vaultA[i:i+8]...), ' ')
	}
	const size = 1 << 20
	probes := []struct{ name, unit string }{
		// A prefix of A's key before an escape: the decode views' walk
		// follows it as far as it matches.
		{"prefix-of-A", string(vaultA[:30]) + "%5F "},
		// An escape of a byte only A holds: the views skip escapes of
		// bytes no secret holds.
		{"escape-of-k", "%6B"},
		{"qgrams-of-A", string(pieces)},
		{"ordinary-text", "the quick brown fox jumps over the lazy dog. "},
	}
	for _, p := range probes {
		in := bytes.Repeat([]byte(p.unit), size/len(p.unit))
		for _, v := range []struct {
			name   string
			secret []byte
		}{{"A", vaultA}, {"B", vaultB}} {
			r, err := New([][]byte{v.secret}, Options{})
			if err != nil {
				b.Fatal(err)
			}
			if _, n := r.Redact(in); n != 0 {
				b.Fatalf("probe %s holds a form of a secret", p.name)
			}
			b.Run(p.name+"/"+v.name, func(b *testing.B) {
				b.SetBytes(int64(len(in)))
				for range b.N {
					w := r.NewWriter(io.Discard)
					for q := in; len(q) > 0; {
						n := min(len(q), 32<<10)
						w.Write(q[:n])
						w.Flush()
						q = q[n:]
					}
					w.Close()
				}
			})
		}
	}
}
