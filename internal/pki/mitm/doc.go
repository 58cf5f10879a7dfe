// Package mitm mints the certificates the proxy presents when it terminates an
// agent's TLS to inject credentials or inspect traffic: one short-lived leaf
// per host, signed by the interception CA, cached until a third of its life
// is left.
//
// It owns leaf minting and caching only. Which hosts are intercepted, and
// what happens to the traffic, is the proxy's business; where the
// interception CA comes from (created in the state directory, or an
// intermediate from Step-CA) is the caller's.
package mitm
