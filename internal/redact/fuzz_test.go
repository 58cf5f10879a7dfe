package redact

import (
	"bytes"
	"math/rand/v2"
	"slices"
	"testing"
)

// FuzzRedact feeds arbitrary bytes, cut and flushed at places chosen by seed,
// through a Writer for the test secrets and for a secret taken from the input
// itself. The streamed output must equal the one-shot definition, and no
// form of a test secret may survive.
func FuzzRedact(f *testing.F) {
	rng := rand.New(rand.NewPCG(5, 5))
	for i := 0; i < 8; i++ {
		f.Add(plant(rng, testSecrets, 40, i%4), rng.Uint64())
	}
	fixed, err := New(testSecrets, Options{})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, in []byte, seed uint64) {
		rng := rand.New(rand.NewPCG(seed, seed>>7))
		cuts := make([]int, rng.IntN(min(len(in), 64)+1))
		flush := make([]bool, len(cuts))
		for i := range cuts {
			cuts[i] = rng.IntN(len(in) + 1)
			flush[i] = rng.IntN(2) == 0
		}
		slices.Sort(cuts)

		want, wantN := referenceRedact(fixed, in)
		assertClean(t, want, testSecrets)
		got, n := streamRedact(t, fixed, in, cuts, flush, want)
		if !bytes.Equal(got, want) || n != wantN {
			t.Fatalf("streamed %q (%d), want %q (%d)", got, n, want, wantN)
		}
		// The one-shot calls skip all work when nothing can hit: that
		// shortcut must never skip a hit.
		if got, n := fixed.Redact(bytes.Clone(in)); !bytes.Equal(got, want) || n != wantN {
			t.Fatalf("Redact gave %q (%d), want %q (%d)", got, n, want, wantN)
		}
		if got, n := fixed.RedactString(string(in)); got != string(want) || n != wantN {
			t.Fatalf("RedactString gave %q (%d), want %q (%d)", got, n, want, wantN)
		}

		// A secret from the input's own bytes exercises pattern building
		// on arbitrary (including non-UTF-8) secrets.
		size := MinSecretLen + int(seed%8)
		if len(in) < size {
			return
		}
		start := int((seed >> 3) % uint64(len(in)-size+1))
		secret := in[start : start+size : start+size]
		own, err := New([][]byte{secret}, Options{Replacement: "<x>"})
		if err != nil {
			t.Fatalf("New refused a %d-byte secret: %v", len(secret), err)
		}
		want, wantN = referenceRedact(own, in)
		if wantN == 0 && !bytes.ContainsAny(secret, "\r\n") {
			// A multi-line secret is searched for raw line by line, and
			// its lines may all be too short to search for (shape.go).
			t.Fatalf("the secret taken from the input was not found in it")
		}
		got, n = streamRedact(t, own, in, cuts, flush, want)
		if !bytes.Equal(got, want) || n != wantN {
			t.Fatalf("own secret: streamed %q (%d), want %q (%d)", got, n, want, wantN)
		}
	})
}
