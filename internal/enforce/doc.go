// Package enforce locks the agent's network namespace down with nftables so
// that the only ways out are the proxy and the CA (`slapenir enforce`), and
// proves from inside the namespace that the lock-down is on (`--check`).
//
// It owns one table, `inet slapenir`, which it installs and removes as a whole
// in a single netlink batch, so the namespace never holds half a ruleset and
// running it twice leaves one. It talks to the kernel over netlink only (no
// `nft` binary).
//
// It must not touch any other table (Docker's and the host's rules are not
// ours), must not resolve names after the rules are built (the rules hold
// addresses, and DNS may be locked away by them), and must never open a
// connection except the probes of Check.
package enforce
