// Package certfile reads, writes and describes the PEM files SLAPENIR keeps on
// disk: cert.pem (leaf and intermediates), key.pem (0600) and root_ca.pem.
//
// It owns the on-disk layout and the rule that a file is replaced atomically
// (temporary file in the same directory, fsync, rename), so a reader never sees
// a half-written certificate — the one atomic write of the project, which the
// aider settings and slapenir up's binary install use too (WriteAtomicFrom).
// It must not talk to a CA or hold TLS state.
package certfile
