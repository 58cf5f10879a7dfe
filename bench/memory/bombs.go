package main

import (
	"bytes"
	"compress/gzip"
	"compress/zlib"
	"encoding/binary"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/andybalholm/brotli"

	"github.com/slapenir/slapenir/bench/benchproc"
)

// bombKinds are the bombs sent at once, in turn: the coding named, and
// "zstd-512m", issue 23's 16 KiB of zstd declaring a 512 MiB window.
var bombKinds = []string{"gzip", "deflate", "br", "zstd", "zstd-512m"}

// bombBodies are the bombs, made once: 256 MiB of zeros in gzip, deflate
// and br (16 MiB window), and zstd frames of RLE blocks (4 bytes for each
// 128 KiB) with an 8 MiB and a 512 MiB window.
var bombBodies = sync.OnceValue(func() map[string][]byte {
	zeros := func(w io.WriteCloser, buf *bytes.Buffer) []byte {
		z := make([]byte, 1<<20)
		for range 256 {
			w.Write(z)
		}
		w.Close()
		return buf.Bytes()
	}
	out := map[string][]byte{}
	var g, d, b bytes.Buffer
	gw, _ := gzip.NewWriterLevel(&g, gzip.BestCompression)
	out["gzip"] = zeros(gw, &g)
	dw, _ := zlib.NewWriterLevel(&d, zlib.BestCompression)
	out["deflate"] = zeros(dw, &d)
	out["br"] = zeros(brotli.NewWriterOptions(&b, brotli.WriterOptions{Quality: 5, LGWin: 24}), &b)
	out["zstd"] = zstdRLE(23, 4096)
	out["zstd-512m"] = zstdRLE(29, 4096)
	return out
})

// zstdRLE is a zstd frame declaring a window of 2^windowLog bytes, then
// blocks RLE blocks of 128 KiB of zeros.
func zstdRLE(windowLog, blocks int) []byte {
	b := []byte{0x28, 0xb5, 0x2f, 0xfd, 0x00, byte(windowLog-10) << 3}
	for i := range blocks {
		h := uint32(128<<10)<<3 | 1<<1
		if i == blocks-1 {
			h |= 1
		}
		b = binary.LittleEndian.AppendUint32(b, h)[:len(b)+3]
		b = append(b, 0)
	}
	return b
}

// serveBomb sends a bomb's first 64 bytes, pauses 3 s so that every bomb is
// being decoded at once, then sends the rest.
func serveBomb(w http.ResponseWriter, kind string) {
	body := bombBodies()[kind]
	coding, _, _ := strings.Cut(kind, "-")
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set("Content-Encoding", coding)
	k := min(64, len(body))
	w.Write(body[:k])
	w.(http.Flusher).Flush()
	time.Sleep(3 * time.Second)
	w.Write(body[k:])
}

// bombsAtOnce sends n bombs through the proxy at once, each on its own
// connection, and reports the proxy's peak RSS and what the clients got.
func bombsAtOnce(p *benchproc.Proxy, origin string, n int) {
	bombBodies()
	proxyURL := &url.URL{Scheme: "http", Host: p.Addr}
	before := p.Stats()
	p.ResetPeak()
	var mu sync.Mutex
	outcomes := map[string]int{}
	var decoded int64
	var wg sync.WaitGroup
	t0 := time.Now()
	for i := range n {
		kind := bombKinds[i%len(bombKinds)]
		wg.Go(func() {
			c := &http.Client{Timeout: 5 * time.Minute, Transport: &http.Transport{Proxy: http.ProxyURL(proxyURL), DisableCompression: true, DisableKeepAlives: true}}
			resp, err := c.Get("http://" + origin + "/bomb?kind=" + kind)
			outcome := ""
			var got int64
			switch {
			case err != nil:
				outcome = "no answer"
			case resp.StatusCode != http.StatusOK:
				outcome = resp.Status
				resp.Body.Close()
			default:
				got, err = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				outcome = "200, decoded whole"
				if err != nil {
					outcome = "200, cut"
				}
			}
			mu.Lock()
			outcomes[outcome]++
			decoded += got
			mu.Unlock()
		})
	}
	wg.Wait()
	took := time.Since(t0)
	after := p.Stats()
	var parts []string
	for _, o := range []string{"200, cut", "502 Bad Gateway", "503 Service Unavailable", "200, decoded whole", "no answer"} {
		if outcomes[o] > 0 {
			parts = append(parts, fmt.Sprintf("%d × %s", outcomes[o], o))
		}
	}
	fmt.Printf("| %d decompression bombs at once (%s in turn; each decodes to 256 or 512 MiB): peak RSS | %s (at rest before: %s) |\n",
		n, strings.Join(bombKinds, ", "), benchproc.MiB(after.Peak), benchproc.MiB(before.RSS))
	fmt.Printf("| … what the clients got, in %.1f s | %s; %s decoded in all |\n", took.Seconds(), strings.Join(parts, ", "), benchproc.MiB(decoded))
}
