// Package stepca runs the real step-ca for tests: it builds the binary once
// from the Go module proxy (cached between runs, guarded by a file lock so
// parallel test binaries build it once), writes a CA with a root, an
// intermediate and two JWK provisioners, starts it on a free loopback port and
// stops it when the test ends.
//
// It must only be imported from tests. It never talks to anything but
// loopback, and every file it writes lives in the test's t.TempDir().
package stepca
