package redact

import (
	"bytes"
	"math/rand/v2"
	"slices"
	"testing"
)

// plant builds random data with secrets, in random encodings, at random
// places.
func plant(rng *rand.Rand, secrets [][]byte, maxGap, count int) []byte {
	encs := encoders()
	alphabet := nearMiss
	if rng.IntN(3) == 0 {
		alphabet = allBytes
	}
	var in []byte
	for k := 0; k < count; k++ {
		in = append(in, randBytes(rng, rng.IntN(maxGap+1), alphabet)...)
		e := encs[rng.IntN(len(encs))]
		in = append(in, e.enc(rng, secrets[rng.IntN(len(secrets))])...)
	}
	return append(in, randBytes(rng, rng.IntN(maxGap+1), alphabet)...)
}

// randomCuts returns n sorted cut points in an input of size bytes, each with
// a coin toss for whether a Flush follows it.
func randomCuts(rng *rand.Rand, n, size int) (cuts []int, flush []bool) {
	cuts, flush = make([]int, n), make([]bool, n)
	for i := range cuts {
		cuts[i] = rng.IntN(size + 1)
		flush[i] = rng.IntN(2) == 0
	}
	slices.Sort(cuts)
	return cuts, flush
}

// TestPropertyEverySplit checks, for random inputs with planted secrets, that
// the streamed output equals the one-shot definition for every single cut
// point (with and without a Flush at the cut), and that no planted form
// survives.
func TestPropertyEverySplit(t *testing.T) {
	r, err := New(testSecrets, Options{})
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(4, 4))
	for iter := 0; iter < 60; iter++ {
		in := plant(rng, testSecrets, 12, 1+rng.IntN(3))
		want, wantN := referenceRedact(r, in)
		assertClean(t, want, testSecrets)
		if wantN == 0 {
			t.Fatalf("reference found nothing in %q", in)
		}
		for cut := 0; cut <= len(in); cut++ {
			for _, flush := range []bool{false, true} {
				got, n := streamRedact(t, r, in, []int{cut}, []bool{flush}, want)
				if !bytes.Equal(got, want) || n != wantN {
					t.Fatalf("cut at %d (flush %v) of %q:\n got %q (%d)\nwant %q (%d)", cut, flush, in, got, n, want, wantN)
				}
			}
		}
	}
}

// TestPropertyRandomMultiSplit uses longer inputs cut into many pieces, down
// to single bytes, with random Flushes.
func TestPropertyRandomMultiSplit(t *testing.T) {
	r, err := New(testSecrets, Options{})
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(7, 7))
	for iter := 0; iter < 300; iter++ {
		in := plant(rng, testSecrets, 200, rng.IntN(8))
		want, wantN := referenceRedact(r, in)
		assertClean(t, want, testSecrets)
		cuts, flush := randomCuts(rng, rng.IntN(len(in)+1), len(in))
		got, n := streamRedact(t, r, in, cuts, flush, want)
		if !bytes.Equal(got, want) || n != wantN {
			t.Fatalf("cuts %v of %q:\n got %q (%d)\nwant %q (%d)", cuts, in, got, n, want, wantN)
		}
	}
}

// TestPropertyUntouchedWithoutSecrets: input holding no secret passes through
// byte for byte, however it is cut.
func TestPropertyUntouchedWithoutSecrets(t *testing.T) {
	r, err := New(testSecrets, Options{})
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(9, 9))
	for iter := 0; iter < 200; iter++ {
		in := plant(rng, testSecrets, 3000, 0)
		if _, n := referenceRedact(r, in); n != 0 {
			continue // the random data happened to spell an encoded secret
		}
		cuts := []int{rng.IntN(len(in) + 1), rng.IntN(len(in) + 1)}
		slices.Sort(cuts)
		got, n := streamRedact(t, r, in, cuts, []bool{true, false}, in)
		if !bytes.Equal(got, in) || n != 0 {
			t.Fatalf("input without secrets changed (%d replacements)", n)
		}
	}
}

// TestLongSecret: a PEM-sized secret makes the window tens of KiB, larger
// than some writes and comparable to the 32 KiB scan piece.
func TestLongSecret(t *testing.T) {
	rng := rand.New(rand.NewPCG(6, 6))
	secret := randBytes(rng, 3000, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/\n-")
	secrets := [][]byte{secret}
	r, err := New(secrets, Options{})
	if err != nil {
		t.Fatal(err)
	}
	for iter := 0; iter < 10; iter++ {
		in := plant(rng, secrets, 40000, 3)
		want, wantN := referenceRedact(r, in)
		assertClean(t, want, secrets)
		cuts, flush := randomCuts(rng, 1+rng.IntN(40), len(in))
		got, n := streamRedact(t, r, in, cuts, flush, want)
		if !bytes.Equal(got, want) || n != wantN {
			t.Fatalf("iteration %d: streamed output differs from the one-shot result (%d vs %d replacements)", iter, n, wantN)
		}
	}
}
