package proxy

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"
)

// zeroReader yields n zero bytes without holding them.
type zeroReader struct{ left int64 }

func (z *zeroReader) Read(p []byte) (int, error) {
	if z.left <= 0 {
		return 0, io.EOF
	}
	n := int64(len(p))
	if n > z.left {
		n = z.left
	}
	clear(p[:n])
	z.left -= n
	return int(n), nil
}

// TestTwoGigabytesInConstantMemory streams 2 GiB down and 2 GiB up through
// the proxy while sampling the heap: a proxy that buffered a body would need
// gigabytes, one that streams stays within a few buffers.
func TestTwoGigabytesInConstantMemory(t *testing.T) {
	if testing.Short() {
		t.Skip("moves 4 GiB; skipped with -short")
	}
	const size = bigBody
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == "PUT" {
			n, err := io.Copy(io.Discard, r.Body)
			if err != nil || n != size {
				http.Error(w, "short upload "+strconv.FormatInt(n, 10), 500)
				return
			}
			io.WriteString(w, strconv.FormatInt(n, 10))
			return
		}
		w.Header().Set("Content-Length", strconv.Itoa(size))
		_, _ = io.Copy(w, &zeroReader{left: size})
	}))
	defer up.Close()
	p := startProxy(t, nil)

	grew := heapGrowth(func() { moveBothWays(t, p, up.URL) })
	const limit = 64 << 20
	t.Logf("heap growth while moving 4 GiB: %.1f MiB", float64(grew)/(1<<20))
	if grew > limit {
		t.Fatalf("the heap grew by %d MiB, more than %d MiB: a body is being buffered", grew>>20, limit>>20)
	}
	var down, upl int64
	for _, r := range p.records(t, 2) {
		switch r.Path {
		case "/big":
			down = r.BytesOut
		case "/up":
			upl = r.BytesIn
		}
	}
	if down != size || upl != size {
		t.Fatalf("records do not count the bytes: out=%d in=%d", down, upl)
	}
}

// bigBody is how much TestTwoGigabytesInConstantMemory moves each way.
const bigBody = 2 << 30

// moveBothWays downloads bigBody bytes from base/big and uploads as many to
// base/up through p.
func moveBothWays(t *testing.T, p *testProxy, base string) {
	t.Helper()
	resp, err := p.client().Get(base + "/big")
	if err != nil {
		t.Fatal(err)
	}
	n, err := io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if err != nil || n != bigBody {
		t.Fatalf("download: %d bytes, %v", n, err)
	}
	req, _ := http.NewRequest("PUT", base+"/up", &zeroReader{left: bigBody})
	req.ContentLength = bigBody
	resp, err = p.client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || string(b) != strconv.Itoa(bigBody) {
		t.Fatalf("upload: %d %q", resp.StatusCode, b)
	}
}
