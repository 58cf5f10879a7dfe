// Package reload gives TLS servers and clients certificates and CA pools that
// follow their files on disk, so a renewed certificate (certs renew, the dev
// CA) or a rotated CA applies on the next handshake without a restart and
// without touching open connections.
//
// It owns: re-reading files when their size, mtime or inode change (checked at
// most once per Interval), keeping the last good material when the new files
// are broken (and saying why, once), verifying client certificates against the
// current pool, and naming a certificate's identities. It must not decide what
// an identity may do beyond matching the configured globs, nor write audit
// records: it returns reasons, the proxy records them.
package reload
