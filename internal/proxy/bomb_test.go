package proxy

import (
	"bytes"
	"compress/gzip"
	"compress/zlib"
	"encoding/binary"
	"io"
	"math/bits"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/andybalholm/brotli"
	"github.com/klauspost/compress/zstd"
)

// zstdRLEBomb is a zstd frame whose header declares a window of window
// bytes (a power of two), followed by blocks RLE blocks of 128 KiB of one
// byte, 4 bytes each: 16 KiB of it decode to 512 MiB. With a 512 MiB window
// it is the bomb of issue 23, which grew the proxy's RSS by 514 MiB.
func zstdRLEBomb(window uint64, blocks int) []byte {
	b := []byte{0x28, 0xb5, 0x2f, 0xfd, 0x00, byte(bits.Len64(window)-1-10) << 3}
	size := uint32(min(window, 128<<10))
	for i := range blocks {
		h := size<<3 | 1<<1 // an RLE block
		if i == blocks-1 {
			h |= 1 // the last
		}
		b = binary.LittleEndian.AppendUint32(b, h)[:len(b)+3]
		b = append(b, 0)
	}
	return b
}

// noise is n bytes of text that compresses by a third or so, with
// matches as far back as any window reaches.
func noise(n int) []byte {
	rng := rand.New(rand.NewPCG(1, 2))
	b := make([]byte, n)
	for i := range b {
		b[i] = "abcdefghijklmnopqrstuvwxyz0123456789"[rng.IntN(36)]
	}
	return b
}

// compress is data in coding at its largest window.
func compress(tb testing.TB, coding string, data []byte) []byte {
	tb.Helper()
	var buf bytes.Buffer
	w := compressor(&buf, coding)
	w.Write(data)
	if err := w.Close(); err != nil {
		tb.Fatal(err)
	}
	return buf.Bytes()
}

func compressor(w io.Writer, coding string) io.WriteCloser {
	switch coding {
	case "gzip":
		zw, _ := gzip.NewWriterLevel(w, gzip.BestCompression)
		return zw
	case "deflate":
		zw, _ := zlib.NewWriterLevel(w, zlib.BestCompression)
		return zw
	case "br":
		return brotli.NewWriterOptions(w, brotli.WriterOptions{Quality: 5, LGWin: 24})
	}
	zw, _ := zstd.NewWriter(w, zstd.WithWindowSize(zstdMaxWindow))
	return zw
}

// zerosBomb compresses realToken and then n zero bytes in coding: a run of
// one byte is what a bomb is made of, and the secret at its start must still
// be redacted from what the agent gets before the cut.
func zerosBomb(tb testing.TB, coding string, n int) []byte {
	tb.Helper()
	var buf bytes.Buffer
	w := compressor(&buf, coding)
	io.WriteString(w, realToken)
	zeros := make([]byte, 1<<20)
	for range n >> 20 {
		w.Write(zeros)
	}
	if err := w.Close(); err != nil {
		tb.Fatal(err)
	}
	return buf.Bytes()
}

// emptyGzipMembers is realToken in a gzip member, then empty gzip members
// up to n bytes: a valid gzip stream (multistream) that decodes to the
// token alone however long it is.
func emptyGzipMembers(tb testing.TB, n int) []byte {
	tb.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	io.WriteString(zw, realToken)
	zw.Close()
	var empty bytes.Buffer
	gzip.NewWriter(&empty).Close()
	for buf.Len() < n {
		buf.Write(empty.Bytes())
	}
	return buf.Bytes()
}

// bombResponses are small decompression bombs of every coding, for the
// hostile upstream fuzzer's seeds: each decodes to at least 16 MiB.
func bombResponses(tb testing.TB) []string {
	var out []string
	for _, coding := range []string{"gzip", "deflate", "br", "zstd"} {
		out = append(out, compressedResponse(coding, zerosBomb(tb, coding, 16<<20)))
	}
	return append(out,
		compressedResponse("zstd", zstdRLEBomb(512<<20, 8)),
		compressedResponse("zstd", zstdRLEBomb(zstdMaxWindow, 256)),
		compressedResponse("br", []byte{0x11, 0x1e, 0, 0, 0, 0}))
}

// compressedResponse is a raw 200 carrying body in coding.
func compressedResponse(coding string, body []byte) string {
	return "HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nContent-Encoding: " + coding +
		"\r\nContent-Length: " + strconv.Itoa(len(body)) + "\r\n\r\n" + string(body)
}

// TestDecompressionBombsAreCut sends a bomb of every coding through the real
// Server, holding the vault's secret: the agent gets at most a few MiB of
// the stream, redacted, before it is cut, the record says the decompression
// limit cut it, and the proxy serves on.
func TestDecompressionBombsAreCut(t *testing.T) {
	up := newRawUpstream(t)
	p := credProxy(t, []string{"127.0.0.1"}, nil)
	gz := zerosBomb(t, "gzip", 64<<20)
	// A bomb in a bomb: gzip of the gzip bomb.
	var nested bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&nested, gzip.BestCompression)
	zw.Write(gz)
	zw.Close()
	cases := map[string][]byte{
		"gzip":       gz,
		"deflate":    zerosBomb(t, "deflate", 64<<20),
		"br":         zerosBomb(t, "br", 64<<20),
		"zstd":       zerosBomb(t, "zstd", 64<<20),
		"zstd rle":   zstdRLEBomb(zstdMaxWindow, 4096),
		"gzip, gzip": nested.Bytes(),
		// br expands a few KiB into 32 MiB of empty gzip members, which
		// gzip decodes to nothing: only br's own output shows the bomb.
		"gzip, br": compress(t, "br", emptyGzipMembers(t, 32<<20)),
	}
	n := 0
	for name, body := range cases {
		t.Run(name, func(t *testing.T) {
			coding := strings.TrimSuffix(name, " rle")
			up.answer(compressedResponse(coding, body))
			raw := throughProxy(t, p, up, modeTarget)
			n++
			assertAgentSeesNoSecret(t, name+" bomb", raw)
			// A bomb that decodes to nothing the redactor lets go (gzip,
			// br) is cut before even the response head was flushed.
			if len(raw) > 0 {
				resp := parseResponse(t, raw)
				got, err := io.ReadAll(resp.Body)
				if resp.StatusCode != http.StatusOK || err == nil {
					t.Fatalf("the agent got %s and a whole body of %d bytes (%v); want the stream cut", resp.Status, len(got), err)
				}
				if len(got) > 2*decodeAllowance {
					t.Fatalf("the agent got %d MiB of a %d KiB bomb before the cut", len(got)>>20, len(body)>>10)
				}
			}
			rec := p.lastRecord(t, n)
			if rec.Reason != reasonDecodeLimit || rec.Decision != decisionError || !strings.Contains(rec.Error, "bomb") {
				t.Fatalf("the bomb's record: %s %s %q", rec.Decision, rec.Reason, rec.Error)
			}
			assertAlive(t, p)
		})
	}
}

// heapGrowth runs f while sampling the heap, and returns how far the heap
// in use rose above where it was before f.
func heapGrowth(f func()) uint64 {
	var ms runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&ms)
	base := ms.HeapAlloc
	var peak atomic.Uint64
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		var ms runtime.MemStats
		for {
			runtime.ReadMemStats(&ms)
			if ms.HeapAlloc > peak.Load() {
				peak.Store(ms.HeapAlloc)
			}
			select {
			case <-stop:
				return
			case <-time.After(5 * time.Millisecond):
			}
		}
	}()
	func() {
		// Stopped also when f fails its test.
		defer func() { close(stop); <-done }()
		f()
	}()
	if peak.Load() < base {
		return 0
	}
	return peak.Load() - base
}

// TestZstdWindowBombIsRefusedBeforeItsHead is issue 23's bomb: a few KiB of
// zstd declaring a 512 MiB window, which the library's default accepts and
// allocates. It is refused with a 502 naming the window, before anything is
// decoded, and the proxy's heap does not grow by the window.
func TestZstdWindowBombIsRefusedBeforeItsHead(t *testing.T) {
	up := newRawUpstream(t)
	p := credProxy(t, []string{"127.0.0.1"}, nil)
	up.answer(compressedResponse("zstd", zstdRLEBomb(512<<20, 8)))
	var resp *http.Response
	grew := heapGrowth(func() {
		resp = rawExchange(t, p.addr, "GET /x HTTP/1.1\r\nHost: proxy\r\nX-Target-URL: http://"+up.addr()+"\r\nConnection: close\r\n\r\n")
		b, _ := io.ReadAll(resp.Body)
		resp.Body = io.NopCloser(bytes.NewReader(b))
	})
	if grew > 64<<20 {
		t.Errorf("the proxy's heap grew by %d MiB for one zstd bomb", grew>>20)
	}
	if resp.StatusCode != http.StatusBadGateway {
		t.Fatalf("a zstd body declaring a 512 MiB window got %s; want 502", resp.Status)
	}
	e := decodeError(t, resp)
	if e.Reason != reasonDecodeLimit || !strings.Contains(e.Error, "window of 512 MiB") {
		t.Fatalf("the refusal: %+v", e)
	}
	if rec := p.lastRecord(t, 1); rec.Reason != reasonDecodeLimit || rec.Status != http.StatusBadGateway {
		t.Fatalf("its record: %+v", rec)
	}
}

// TestBrotliLargeWindowIsRefused: large-window brotli (RFC 7932's extension,
// up to 1 GiB) is not decoded; the 502 says so.
func TestBrotliLargeWindowIsRefused(t *testing.T) {
	up := newRawUpstream(t)
	p := credProxy(t, []string{"127.0.0.1"}, nil)
	// WBITS bits 1,000,001 then the large window's own bits: 0x11.
	up.answer(compressedResponse("br", []byte{0x11, 0x1e, 0, 0, 0, 0}))
	resp := parseResponse(t, throughProxy(t, p, up, modeForward))
	if e := decodeError(t, resp); resp.StatusCode != http.StatusBadGateway || e.Reason != reasonDecodeLimit || !strings.Contains(e.Error, "large window") {
		t.Fatalf("large-window brotli: %s %+v", resp.Status, e)
	}
}

// TestDecodingMemoryIsBounded: 20 compressed responses at once from one
// client, each holding a full 8 MiB zstd window while its upstream stalls.
// No more than the client's share of decoding memory is granted; the
// responses that find no room within decodeWait are refused with a 503
// that says why, and the heap grows by the share, not by 20 windows.
func TestDecodingMemoryIsBounded(t *testing.T) {
	// One frame of 8 MiB window: its first block, then a pause, then the
	// rest. Its window is allocated when the first block is decoded.
	frame := zstdRLEBomb(zstdMaxWindow, 4)
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Encoding", "zstd")
		w.Write(frame[:10])
		w.(http.Flusher).Flush()
		time.Sleep(3 * time.Second)
		w.Write(frame[10:])
	}))
	defer up.Close()
	p := credProxy(t, []string{"127.0.0.1"}, nil)

	const n = 20
	var peakGranted atomic.Int64
	stop := make(chan struct{})
	go func() {
		for {
			if u := p.srv.decoding.inUse(); u > peakGranted.Load() {
				peakGranted.Store(u)
			}
			select {
			case <-stop:
				return
			case <-time.After(time.Millisecond):
			}
		}
	}()
	statuses := make([]int, n)
	reasons := make([]string, n)
	grew := heapGrowth(func() {
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() {
				c := p.client()
				c.Timeout = 10 * time.Second
				resp, err := c.Get(up.URL)
				if err != nil {
					t.Error(err)
					return
				}
				statuses[i] = resp.StatusCode
				if resp.StatusCode == http.StatusOK {
					b, err := io.ReadAll(resp.Body)
					if err != nil || len(b) != 4<<17 {
						t.Errorf("an admitted response: %d bytes, %v", len(b), err)
					}
					resp.Body.Close()
					return
				}
				reasons[i] = decodeError(t, resp).Reason
			})
		}
		wg.Wait()
	})
	close(stop)
	ok, busy := 0, 0
	for i, s := range statuses {
		switch {
		case s == http.StatusOK:
			ok++
		case s == http.StatusServiceUnavailable && reasons[i] == "decompression_busy":
			busy++
		default:
			t.Errorf("response %d: %d %s", i, s, reasons[i])
		}
	}
	if peakGranted.Load() > decodeMemoryPerClient {
		t.Errorf("%d MiB of decoding memory granted to one client, over its %d MiB", peakGranted.Load()>>20, decodeMemoryPerClient>>20)
	}
	if want := int(decodeMemoryPerClient / zstdCharge); ok < want || busy != n-ok {
		t.Errorf("%d responses decoded and %d refused as busy; want at least %d decoded (the client's share) and the rest refused", ok, busy, want)
	}
	t.Logf("%d decoded, %d refused as busy; heap grew by %d MiB, at most %d MiB granted", ok, busy, grew>>20, peakGranted.Load()>>20)
	if grew > decodeMemoryPerClient+48<<20 {
		t.Errorf("the heap grew by %d MiB for %d stalled zstd responses; the client's share is %d MiB", grew>>20, n, decodeMemoryPerClient>>20)
	}
	if p.srv.decoding.inUse() != 0 {
		t.Errorf("%d bytes of decoding memory still granted after every response ended", p.srv.decoding.inUse())
	}
}

// TestDecoderMemoryIsWithinItsCharge decodes each coding at its largest
// window through decodedBody and checks that what its decoders hold live
// is within what decodedBody charged the budget for it.
func TestDecoderMemoryIsWithinItsCharge(t *testing.T) {
	for _, coding := range []string{"gzip", "deflate", "br", "zstd"} {
		t.Run(coding, func(t *testing.T) {
			body := compress(t, coding, noise(20<<20))
			resp := &http.Response{StatusCode: 200, Header: http.Header{"Content-Encoding": {coding}}, ContentLength: -1,
				Body: io.NopCloser(bytes.NewReader(body)), Request: httpRequest(t)}
			budget := newDecodeBudget(decodeMemory, decodeMemoryPerClient)
			x := &exchange{ctx: t.Context()}
			var ms runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&ms)
			before := ms.HeapAlloc
			d, err := decodedBody(resp, budget, x)
			if err != nil {
				t.Fatal(err)
			}
			// Past a full window, so every buffer is at its largest.
			if _, err := io.CopyN(io.Discard, d, 18<<20); err != nil {
				t.Fatal(err)
			}
			runtime.GC()
			runtime.ReadMemStats(&ms)
			held := int64(ms.HeapAlloc) - int64(before)
			charged := budget.inUse()
			runtime.KeepAlive(d)
			d.Close()
			t.Logf("%s: decoders hold %d KiB, charged %d KiB", coding, held>>10, charged>>10)
			if held > charged {
				t.Errorf("%s decoders hold %d KiB, more than the %d KiB charged for them", coding, held>>10, charged>>10)
			}
			if budget.inUse() != 0 {
				t.Errorf("Close left %d bytes granted", budget.inUse())
			}
		})
	}
}

func httpRequest(t *testing.T) *http.Request {
	r, err := http.NewRequest("GET", "http://example.com/", nil)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// TestBodilessCompressedResponsePasses: the answer to a HEAD has no body to
// decode, whatever its Content-Encoding; it is passed on with the header,
// which describes the resource (it used to be a 502: an empty gzip body is
// corrupt).
func TestBodilessCompressedResponsePasses(t *testing.T) {
	up := newRawUpstream(t)
	p := credProxy(t, []string{"127.0.0.1"}, nil)
	up.answer("HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: 1234\r\n\r\n")
	resp := rawExchange(t, p.addr, "HEAD http://"+up.addr()+"/ HTTP/1.1\r\nHost: "+up.addr()+"\r\n\r\n")
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Encoding") != "gzip" {
		t.Fatalf("HEAD of a gzip resource: %s %v", resp.Status, resp.Header)
	}
}

// TestDeepCodingStacksAreRefused: every layer of stacked codings may expand
// up to the ratio against the wire, so the work grows with the depth; a
// thousand "gzip"s over stored layers would make one small body gigabytes
// of decoding. A stack deeper than maxCodings is refused before anything is
// decoded; a stack of two, as sent in earnest, still passes.
func TestDeepCodingStacksAreRefused(t *testing.T) {
	up := newRawUpstream(t)
	p := credProxy(t, []string{"127.0.0.1"}, nil)
	body := []byte("hello")
	for range 64 {
		body = compress(t, "gzip", body)
	}
	deep := strings.TrimSuffix(strings.Repeat("gzip, ", 64), ", ")
	up.answer("HTTP/1.1 200 OK\r\nContent-Encoding: " + deep + "\r\nContent-Length: " + strconv.Itoa(len(body)) + "\r\n\r\n" + string(body))
	resp := parseResponse(t, throughProxy(t, p, up, modeForward))
	if e := decodeError(t, resp); resp.StatusCode != http.StatusBadGateway || e.Reason != reasonDecodeLimit || !strings.Contains(e.Error, "stacks 64 content codings") {
		t.Fatalf("64 stacked codings: %s %+v", resp.Status, e)
	}
	two := compress(t, "br", compress(t, "gzip", []byte("hello")))
	up.answer("HTTP/1.1 200 OK\r\nContent-Encoding: gzip, br\r\nContent-Length: " + strconv.Itoa(len(two)) + "\r\n\r\n" + string(two))
	resp = parseResponse(t, throughProxy(t, p, up, modeForward))
	if b, _ := io.ReadAll(resp.Body); resp.StatusCode != 200 || string(b) != "hello" {
		t.Fatalf("gzip, br: %s %q", resp.Status, b)
	}
}
