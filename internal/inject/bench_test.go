package inject

import (
	"fmt"
	"io"
	"strings"
	"testing"
)

// BenchmarkWriter measures request-body throughput on one core with 10 and
// 100 DUMMY_<NAME> placeholders (all sharing the first byte, the worst case
// for the first-byte table) in JSON-ish text that holds one placeholder per
// ~1 KiB.
func BenchmarkWriter(b *testing.B) {
	var sb strings.Builder
	for sb.Len() < 4<<20 {
		sb.WriteString(`{"role":"user","content":"Deploy the Docker image and check the DNS record, then report."}` + "\n")
		if sb.Len()%1024 < 100 {
			sb.WriteString(`{"auth":"DUMMY_NAME7"}` + "\n")
		}
	}
	text := []byte(sb.String())
	for _, n := range []int{10, 100} {
		b.Run(fmt.Sprintf("placeholders=%d", n), func(b *testing.B) {
			pairs := make([]Pair, n)
			for i := range pairs {
				pairs[i] = Pair{[]byte(fmt.Sprintf("DUMMY_NAME%d", i)), []byte(fmt.Sprintf("real-value-%d-0123456789", i))}
			}
			inj, err := New(pairs)
			if err != nil {
				b.Fatal(err)
			}
			b.SetBytes(int64(len(text)))
			for b.Loop() {
				w := inj.NewWriter(io.Discard, func(int) bool { return true })
				for off := 0; off < len(text); off += 32 << 10 {
					if _, err := w.Write(text[off:min(off+32<<10, len(text))]); err != nil {
						b.Fatal(err)
					}
				}
				if err := w.Close(); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
