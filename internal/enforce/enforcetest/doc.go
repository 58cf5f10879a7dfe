// Package enforcetest gives tests a network namespace of their own joined to
// the root namespace by a veth pair, plus the small TCP greeter that proves a
// connection and its replies get through, so tests of the egress lock-down
// (and of anything running behind it) can probe real traffic.
//
// It is for tests only, needs root, and must never touch a namespace or
// interface it did not create.
package enforcetest
