// Package tlslisten wraps a TCP listener so that TLS clients get a TLS
// connection and plaintext clients get one clear HTTP answer ("this port
// speaks TLS with a client certificate") instead of a handshake error they
// cannot read.
//
// It owns only the first-byte classification of new connections; handshakes
// and client verification stay with crypto/tls and package reload. A slow or
// silent client never blocks Accept for the others.
package tlslisten
