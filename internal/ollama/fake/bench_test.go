package fake_test

import (
	"bufio"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/slapenir/slapenir/internal/ollama/fake"
)

// BenchmarkChatStreamDirect measures a streamed /api/chat read line by line
// straight from the fake on loopback: the baseline that the relay and proxy
// benchmarks of issue 6 add their latency to. It reports the time to the
// first token and the time per following token.
//
// It reads with net/http rather than Ollama's client, whose Chat allocates an
// 8 MB scanner buffer per call: that costs milliseconds on a loaded machine
// and would drown the sub-millisecond differences being measured.
func BenchmarkChatStreamDirect(b *testing.B) {
	for _, bc := range []struct {
		name   string
		tokens int
	}{{"short", 10}, {"long", 2000}} {
		b.Run(bc.name, func(b *testing.B) {
			s, err := fake.Listen("127.0.0.1:0", fake.Options{TokenCount: bc.tokens})
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			const body = `{"model":"qwen2.5-coder:7b","messages":[{"role":"user","content":"hi"}]}`

			var ttft, rest time.Duration
			for b.Loop() {
				start := time.Now()
				resp, err := http.Post(s.URL()+"/api/chat", "application/json", strings.NewReader(body))
				if err != nil {
					b.Fatal(err)
				}
				sc := bufio.NewScanner(resp.Body)
				var first, last time.Time
				n := 0
				for sc.Scan() {
					last = time.Now()
					if n == 0 {
						first = last
					}
					n++
				}
				_ = resp.Body.Close()
				if sc.Err() != nil || n != bc.tokens+1 {
					b.Fatalf("read %d lines (%v), want %d", n, sc.Err(), bc.tokens+1)
				}
				ttft += first.Sub(start)
				rest += last.Sub(first)
			}
			b.ReportMetric(float64(ttft.Nanoseconds())/float64(b.N), "ns-first-token")
			b.ReportMetric(float64(rest.Nanoseconds())/float64(b.N*bc.tokens), "ns/token")
		})
	}
}
