package proxy

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/slapenir/slapenir/internal/secrets"
)

// The noninterference property through the real Server (DESIGN.md §4.10):
// two proxies whose vaults hold different secrets of one shape, each fed
// the same upstream response one chunk at a time, must give the agent the
// same bytes at the same points. An agent that could tell them apart could
// learn a secret it does not hold from when its own echoed bytes arrive.

// lockstepRaw is a hostile upstream speaking raw HTTP/1.1: it answers every
// request with a chunked response whose chunks it writes one at a time,
// each only when the test says so, with odd framing (chunk extensions, a
// chunk header split across writes) on some.
type lockstepRaw struct {
	ln     net.Listener
	header string
	chunks [][]byte
	next   chan struct{}
	rng    *rand.Rand
}

func (u *lockstepRaw) serve(t *testing.T) {
	c, err := u.ln.Accept()
	if err != nil {
		return
	}
	defer c.Close()
	if _, err := http.ReadRequest(bufio.NewReader(c)); err != nil {
		t.Errorf("upstream: %v", err)
		return
	}
	io.WriteString(c, "HTTP/1.1 200 OK\r\n"+u.header+"Transfer-Encoding: chunked\r\n\r\n")
	for _, ch := range u.chunks {
		select {
		case <-u.next:
		case <-time.After(20 * time.Second):
			return
		}
		head := fmt.Sprintf("%x\r\n", len(ch))
		if u.rng.IntN(3) == 0 {
			head = fmt.Sprintf("%x;ext=\"a b\"\r\n", len(ch))
		}
		frame := []byte(head + string(ch) + "\r\n")
		if cut := u.rng.IntN(len(frame)); u.rng.IntN(2) == 0 {
			c.Write(frame[:cut])
			time.Sleep(time.Millisecond)
			frame = frame[cut:]
		}
		if _, err := c.Write(frame); err != nil {
			return
		}
	}
	<-u.next
	io.WriteString(c, "0\r\nX-Trailer: done\r\n\r\n")
}

// agentStream reads a response body as it arrives and says how much has.
type agentStream struct {
	mu   sync.Mutex
	got  []byte
	done chan error
}

func (a *agentStream) len() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return len(a.got)
}

// waitFor waits until want bytes have arrived, then a moment more for any
// that should not have, and reports how many there are.
func (a *agentStream) waitFor(want int) int {
	deadline := time.Now().Add(10 * time.Second)
	for a.len() < want && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	time.Sleep(15 * time.Millisecond)
	return a.len()
}

// observe sends the response through p chunk by chunk and returns how many
// body bytes the agent had after each chunk, waiting for want[i] at step i
// (from the other vault, or from the redactor run in-process).
func observe(t *testing.T, p *testProxy, header string, chunks [][]byte, seed uint64, want []int) ([]int, []byte) {
	t.Helper()
	ln := listenLoopback(t)
	up := &lockstepRaw{ln: ln, header: header, chunks: chunks, next: make(chan struct{}), rng: rand.New(rand.NewPCG(seed, 1))}
	go up.serve(t)
	defer ln.Close()

	conn, err := net.Dial("tcp", p.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "GET http://%s/echo HTTP/1.1\r\nHost: %s\r\n\r\n", ln.Addr(), ln.Addr())
	up.next <- struct{}{}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 200 {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("status %d: %s", resp.StatusCode, b)
	}
	a := &agentStream{done: make(chan error, 1)}
	go func() {
		buf := make([]byte, 4096)
		for {
			n, err := resp.Body.Read(buf)
			a.mu.Lock()
			a.got = append(a.got, buf[:n]...)
			a.mu.Unlock()
			if err != nil {
				if err == io.EOF {
					err = nil
				}
				a.done <- err
				return
			}
		}
	}()
	var trace []int
	for i := range chunks {
		got := a.waitFor(want[i])
		trace = append(trace, got)
		if got != want[i] {
			return trace, nil
		}
		if i+1 < len(chunks) {
			up.next <- struct{}{}
		}
	}
	up.next <- struct{}{}
	select {
	case err := <-a.done:
		if err != nil {
			t.Fatalf("reading the body: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the body never ended")
	}
	return trace, a.got
}

// sameShapeToken returns a token like tok: the same prefix "ghp_", the same
// length, letters and digits drawn anew.
func sameShapeToken(rng *rand.Rand, n int) string {
	const alnum = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
	b := []byte("ghp_")
	for len(b) < n {
		b = append(b, alnum[rng.IntN(len(alnum))])
	}
	return string(b)
}

// probeChunks is what the attack sent: prefixes of the real key's forms,
// with and without a wrong last character, between ordinary stream text,
// cut into chunks at random.
func probeChunks(rng *rand.Rand, secretsToProbe []string, contentType string, filler []byte) [][]byte {
	var body []byte
	for k := 0; k < 6+rng.IntN(6); k++ {
		if len(filler) > 0 {
			i := rng.IntN(len(filler))
			body = append(body, filler[i:min(len(filler), i+1+rng.IntN(32))]...)
		}
		s := secretsToProbe[rng.IntN(len(secretsToProbe))]
		guess := s[:1+rng.IntN(len(s)-1)]
		if rng.IntN(2) == 0 {
			guess = guess[:len(guess)-1] + "#"
		}
		switch contentType {
		case "text/event-stream":
			body = fmt.Appendf(body, "data: {\"echo\":%q}\n\n", guess)
		case "application/x-ndjson":
			body = fmt.Appendf(body, "{\"echo\":%q}\n", guess)
		default:
			body = fmt.Appendf(body, "%s %s", []string{"said", "x=", "<b>", "%2F"}[rng.IntN(4)], guess)
		}
	}
	var chunks [][]byte
	for len(body) > 0 {
		n := 1 + rng.IntN(min(len(body), 40))
		if contentType != "text/plain" && rng.IntN(2) == 0 {
			// Whole events, as a streaming server writes them.
			if i := bytes.IndexByte(body, '\n'); i >= 0 {
				n = i + 1
			}
		}
		chunks = append(chunks, body[:n])
		body = body[n:]
	}
	return chunks
}

// expectedTrace runs the chunks through the proxy's own redactor
// in-process, a Flush after each: what the agent must have after each.
func expectedTrace(t testing.TB, c *Credentials, chunks [][]byte) []int {
	var out bytes.Buffer
	w := c.red.NewWriter(&out)
	var trace []int
	for _, ch := range chunks {
		w.Write(ch)
		if err := w.Flush(); err != nil {
			t.Fatal(err)
		}
		trace = append(trace, out.Len())
	}
	return trace
}

// vaultPair is two proxies whose vaults hold different tokens of one shape.
type vaultPair struct {
	pa, pb     *testProxy
	ca         *Credentials
	tokA, tokB string
}

func startVaultPair(t testing.TB, rng *rand.Rand) *vaultPair {
	vp := &vaultPair{tokA: sameShapeToken(rng, len(realToken)), tokB: sameShapeToken(rng, len(realToken))}
	start := func(token string) (*testProxy, *Credentials) {
		_, creds := vaultCredentials(t, secrets.CredentialConfig{Name: "github", Env: "GITHUB_TOKEN", Hosts: []string{"api.github.com"}}, token, nil)
		return startProxyOpts(t, loopbackConfig(), Options{Credentials: creds}), creds
	}
	vp.pa, vp.ca = start(vp.tokA)
	vp.pb, _ = start(vp.tokB)
	return vp
}

var streamTypes = []string{"text/event-stream", "application/x-ndjson", "text/plain", "application/octet-stream"}

// check sends one response, cut into chunks, through both proxies (gzipped
// when asked) and fails unless the agent sees the same at every step.
func (vp *vaultPair) check(t *testing.T, ct string, chunks [][]byte, gzipped bool, seed uint64) {
	t.Helper()
	whole := bytes.Join(chunks, nil)
	for _, tok := range []string{vp.tokA, vp.tokB} {
		if _, n := vp.ca.red.Redact(bytes.ReplaceAll(whole, []byte(vp.tokA), []byte(tok))); n > 0 && tok == vp.tokA {
			return // the fuzzer found a form of a secret: not this property's case
		}
	}
	header := "Content-Type: " + ct + "\r\n"
	sent := chunks
	want := expectedTrace(t, vp.ca, chunks)
	if gzipped {
		sent = gzipChunks(t, chunks)
		header += "Content-Encoding: gzip\r\n"
		// The gzip trailer goes alone: Go's gzip reader looks for a
		// next member before it returns the last one's end.
		want = append(want, want[len(want)-1])
	}
	traceA, bodyA := observe(t, vp.pa, header, sent, seed, want)
	if !equalInts(traceA, want) {
		t.Fatalf("%s (gzip %v): the agent had %v bytes after each chunk, the redactor releases %v; chunks %q", ct, gzipped, traceA, want, chunks)
	}
	traceB, bodyB := observe(t, vp.pb, header, sent, seed, traceA)
	if !equalInts(traceA, traceB) {
		t.Fatalf("%s (gzip %v): two vaults of one shape are told apart by when bytes arrive: %v under one, %v under the other",
			ct, gzipped, traceA, traceB)
	}
	if !bytes.Equal(bodyA, whole) || !bytes.Equal(bodyB, whole) {
		t.Fatalf("%s: a body without secrets changed on its way", ct)
	}
	if ct == "text/event-stream" || ct == "application/x-ndjson" {
		// Every event or line reaches the agent the moment its newline
		// does.
		sum := 0
		for i, ch := range chunks {
			sum += len(ch)
			if ch[len(ch)-1] == '\n' && traceA[i] != sum {
				t.Fatalf("%s: after a chunk ending in a newline the agent had %d of %d bytes", ct, traceA[i], sum)
			}
		}
	}
}

func TestNoninterferenceThroughTheServer(t *testing.T) {
	rng := rand.New(rand.NewPCG(23, 23))
	vp := startVaultPair(t, rng)
	for iter := 0; iter < 8; iter++ {
		ct := streamTypes[iter%len(streamTypes)]
		vp.check(t, ct, probeChunks(rng, []string{vp.tokA, vp.tokB}, ct, nil), iter%3 == 2, uint64(iter))
	}
}

// FuzzServerNoninterference is the property with responses the fuzzer
// writes: its bytes between the probes, the chunking and the content type
// from its seed.
func FuzzServerNoninterference(f *testing.F) {
	f.Add([]byte("data: hello\n\n"), uint64(0))
	f.Add([]byte("ghp_"), uint64(5))
	f.Add([]byte("%67%68&#x70;\\u005f"), uint64(10))
	vp := startVaultPair(f, rand.New(rand.NewPCG(23, 24)))
	f.Fuzz(func(t *testing.T, filler []byte, seed uint64) {
		rng := rand.New(rand.NewPCG(seed, 3))
		ct := streamTypes[seed%uint64(len(streamTypes))]
		vp.check(t, ct, probeChunks(rng, []string{vp.tokA, vp.tokB}, ct, filler), seed%3 == 2, seed)
	})
}

func equalInts(a, b []int) bool {
	return len(a) == len(b) && strings.Trim(fmt.Sprint(a), "[]") == strings.Trim(fmt.Sprint(b), "[]")
}

// gzipChunks compresses the stream with a sync flush after each chunk, so
// each compressed chunk decodes to exactly its plain one, and adds the
// stream's end as a last chunk.
func gzipChunks(t testing.TB, chunks [][]byte) [][]byte {
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	var out [][]byte
	for _, ch := range chunks {
		zw.Write(ch)
		if err := zw.Flush(); err != nil {
			t.Fatal(err)
		}
		out = append(out, bytes.Clone(buf.Bytes()))
		buf.Reset()
	}
	zw.Close()
	return append(out, buf.Bytes())
}
