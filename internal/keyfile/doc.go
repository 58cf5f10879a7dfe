// Package keyfile owns the proxy's small secret key files in its state
// directory (the placeholder key, the audit key): read one, or create it
// with fresh random bytes, mode 0600, exactly once even when two processes
// start together.
//
// It must not decide what a key is for or print a key's bytes: errors name
// the file, its purpose and its size only.
package keyfile
