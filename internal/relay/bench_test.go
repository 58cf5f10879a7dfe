package relay_test

import (
	"bufio"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/slapenir/slapenir/internal/ollama/fake"
	"github.com/slapenir/slapenir/internal/pki/certfile"
	"github.com/slapenir/slapenir/internal/pki/devca"
	"github.com/slapenir/slapenir/internal/proxy"
	"github.com/slapenir/slapenir/internal/secrets"
	"github.com/slapenir/slapenir/internal/testutil/proxytest"
)

// BenchmarkStream measures, for a streamed /api/chat, the time to the first
// token and the time per token after it, directly to the fake Ollama and
// through helper → proxy (plaintext and mTLS), in one run so the figures
// compare. The difference is what the relay path adds.
//
//	go test -run '^$' -bench BenchmarkStream -benchtime 200x ./internal/relay/
func BenchmarkStream(b *testing.B) {
	for _, size := range []struct {
		name   string
		tokens int
	}{{"short", 10}, {"long", 2000}} {
		f := startFake(b, fake.Options{TokenCount: size.tokens})
		paths := map[string]string{
			"direct":          f.URL(),
			"relay-plaintext": benchRelay(b, false, f.URL()),
			"relay-mtls":      benchRelay(b, true, f.URL()),
			"relay-mtls-cred": benchCredRelay(b, f.URL()),
		}
		for _, name := range []string{"direct", "relay-plaintext", "relay-mtls", "relay-mtls-cred"} {
			b.Run(size.name+"/"+name, func(b *testing.B) {
				streamOnce(b, paths[name], size.tokens) // warm the connection
				var ttft, rest time.Duration
				var whole, cut int
				b.ResetTimer()
				for i := 0; i < b.N; i++ {
					first, total, ok := streamOnce(b, paths[name], size.tokens)
					if !ok {
						cut++
						continue
					}
					whole++
					ttft += first
					rest += total - first
				}
				if whole == 0 {
					b.Fatalf("every stream through %s was cut", name)
				}
				b.ReportMetric(float64(ttft.Nanoseconds())/float64(whole), "ns-first-token")
				b.ReportMetric(float64(rest.Nanoseconds())/float64(whole*size.tokens), "ns/token")
				b.ReportMetric(float64(cut), "cut-streams")
			})
		}
	}
}

// benchRelay starts a proxy (mTLS or plaintext) and a relay in front of it,
// and returns the helper's URL.
func benchRelay(b *testing.B, withTLS bool, fakeURL string) string {
	target := strings.TrimPrefix(fakeURL, "http://")
	if withTLS {
		m := startMTLSProxy(b)
		return startRelay(b, m.proxy.url, m.certs, target).helperURL.String()
	}
	p := startProxy(b, nil)
	return startRelay(b, p.url, "", target).helperURL.String()
}

// benchCredRelay is benchRelay over mTLS to a proxy whose vault holds a
// credential, so every response is scanned by the redactor on its way:
// what the redactor's hold-back costs a streamed token.
func benchCredRelay(b *testing.B, fakeURL string) string {
	target := strings.TrimPrefix(fakeURL, "http://")
	creds, _ := proxytest.Credentials(b, secrets.Config{Credentials: []secrets.CredentialConfig{{Name: "github", Env: "GITHUB_TOKEN", Hosts: []string{"api.github.com"}}}},
		map[string]string{"GITHUB_TOKEN": "ghp_R3alSecretValue0123456789abcdefXYZ"})
	tlsOpts, ca := proxytest.DevMTLS(b, "agent-*")
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	p := proxytest.Start(b, proxy.Options{Config: proxytest.LoopbackConfig(), TLS: tlsOpts, Credentials: creds}, ln)
	certs := certfile.Dir(filepath.Join(b.TempDir(), "certs"))
	if _, err := ca.IssueTo(certs, devca.Request{CommonName: "agent-1", Usage: devca.Client}); err != nil {
		b.Fatal(err)
	}
	return startRelay(b, p.URL, certs, target).helperURL.String()
}

// streamOnce sends one streamed chat and returns when the first token line
// arrived and when the last line did. ok is false for a stream cut short:
// those are counted, not timed (see docs/bench-relay.md about the proxy).
func streamOnce(b *testing.B, base string, tokens int) (first, total time.Duration, ok bool) {
	body := `{"model":"qwen2.5-coder:7b","messages":[{"role":"user","content":"hi"}]}`
	start := time.Now()
	resp, err := http.Post(base+"/api/chat", "application/json", strings.NewReader(body))
	if err != nil {
		b.Fatal(err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	lines := 0
	for sc.Scan() {
		if lines == 0 {
			first = time.Since(start)
		}
		lines++
	}
	total = time.Since(start)
	return first, total, lines == tokens+1
}

// BenchmarkChunkDelay measures how late each line of an NDJSON stream
// arrives (each carries the time it was sent; one every 2 ms), directly
// and through helper → relay → proxy, plaintext and mTLS (issue 13's aim:
// at most 0.1 ms added at p50 and 0.5 ms at p99). b.N is the number of
// 200-line streams.
//
//	go test -run '^$' -bench BenchmarkChunkDelay -benchtime 10x ./internal/relay/
func BenchmarkChunkDelay(b *testing.B) {
	const lines = 200
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/x-ndjson")
		f := w.(http.Flusher)
		for range lines {
			fmt.Fprintf(w, "{\"sent\":%d}\n", time.Now().UnixNano())
			f.Flush()
			time.Sleep(2 * time.Millisecond)
		}
	}))
	b.Cleanup(up.Close)
	target := strings.TrimPrefix(up.URL, "http://")
	paths := map[string]string{"direct": up.URL, "relay-plaintext": benchRelay(b, false, target), "relay-mtls": benchRelay(b, true, target),
		"relay-mtls-cred": benchCredRelay(b, target)}
	for _, name := range []string{"direct", "relay-plaintext", "relay-mtls", "relay-mtls-cred"} {
		b.Run(name, func(b *testing.B) {
			var delays []time.Duration
			for i := 0; i < b.N+1; i++ { // the first warms the connections
				resp, err := http.Post(paths[name]+"/api/chat", "application/json", strings.NewReader(`{"model":"m"}`))
				if err != nil {
					b.Fatal(err)
				}
				sc := bufio.NewScanner(resp.Body)
				n := 0
				for sc.Scan() {
					var sent int64
					if _, err := fmt.Sscanf(sc.Text(), "{\"sent\":%d}", &sent); err != nil {
						b.Fatalf("line %q: %v", sc.Text(), err)
					}
					if i > 0 && n > 0 { // the first line also carries the request
						delays = append(delays, time.Since(time.Unix(0, sent)))
					}
					n++
				}
				resp.Body.Close()
				if n != lines {
					b.Fatalf("%d of %d lines through %s", n, lines, name)
				}
			}
			slices.Sort(delays)
			b.ReportMetric(float64(delays[len(delays)/2].Microseconds()), "p50-µs")
			b.ReportMetric(float64(delays[len(delays)*99/100].Microseconds()), "p99-µs")
		})
	}
}
