package audit

import (
	"path/filepath"
	"testing"
)

// BenchmarkWrite is the cost the proxy pays per request: encode, chain, one
// write system call to a file on disk.
func BenchmarkWrite(b *testing.B) {
	l, err := Open(Options{File: filepath.Join(b.TempDir(), "audit.jsonl"), MaxBytes: 64 << 20, MaxBackups: 1})
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	r := sampleRecord(7)
	b.ReportAllocs()
	for b.Loop() {
		if err := l.Write(r); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkWriteParallel is Write from many request goroutines at once.
func BenchmarkWriteParallel(b *testing.B) {
	l, err := Open(Options{File: filepath.Join(b.TempDir(), "audit.jsonl"), MaxBytes: 64 << 20, MaxBackups: 1})
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		r := sampleRecord(7)
		for pb.Next() {
			if err := l.Write(r); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

func BenchmarkMaskPath(b *testing.B) {
	for _, p := range []string{
		"/api/chat",
		"/v1/models?limit=10&order=asc",
		"/b/o?X-Amz-Algorithm=AWS4&X-Amz-Credential=AKIA%2F2026&X-Amz-Signature=ff&X-Amz-Security-Token=tt",
	} {
		b.Run(p[:min(len(p), 20)], func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				MaskPath(p)
			}
		})
	}
}

func BenchmarkVerify(b *testing.B) {
	name := filepath.Join(b.TempDir(), "audit.jsonl")
	l, err := Open(Options{File: name})
	if err != nil {
		b.Fatal(err)
	}
	for i := range 10000 {
		if err := l.Write(sampleRecord(i)); err != nil {
			b.Fatal(err)
		}
	}
	l.Close()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Verify([]string{name}, VerifyOptions{}); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/10000, "ns/record")
}
