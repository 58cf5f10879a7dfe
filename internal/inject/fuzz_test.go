package inject

import (
	"bytes"
	"math/rand/v2"
	"slices"
	"testing"
)

// FuzzInject streams arbitrary bytes, cut where seed says, with the
// placeholders allowed by seed's low bits, and compares with the one-shot
// definition.
func FuzzInject(f *testing.F) {
	rng := rand.New(rand.NewPCG(8, 8))
	for i := 0; i < 6; i++ {
		f.Add(plant(rng), rng.Uint64())
	}
	inj, err := New(testPairs)
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, in []byte, seed uint64) {
		allow := func(i int) bool { return seed&(1<<i) != 0 }
		rng := rand.New(rand.NewPCG(seed, 1))
		cuts := make([]int, rng.IntN(min(len(in), 32)+1))
		for i := range cuts {
			cuts[i] = rng.IntN(len(in) + 1)
		}
		slices.Sort(cuts)
		want, wantUsed := reference(in, allow)
		got, used := stream(t, inj, in, cuts, allow, want)
		if !bytes.Equal(got, want) || !slices.Equal(used.Injected, wantUsed.Injected) || !slices.Equal(used.Foreign, wantUsed.Foreign) {
			t.Fatalf("got %q %+v, want %q %+v", got, used, want, wantUsed)
		}
		// ReplaceString skips values where no placeholder can start: the
		// shortcut must never skip one.
		if s, used := inj.ReplaceString(string(in), allow); s != string(want) || !slices.Equal(used.Injected, wantUsed.Injected) || !slices.Equal(used.Foreign, wantUsed.Foreign) {
			t.Fatalf("ReplaceString: got %q %+v, want %q %+v", s, used, want, wantUsed)
		}
	})
}
