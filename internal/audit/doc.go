// Package audit owns SLAPENIR's audit log: the Record written for every request,
// tunnel and refusal, the Logger that appends records as JSON Lines to a file
// (rotated by size) and/or stdout, the hash chain that makes edits, deletions and
// reordering of lines detectable, and the readers behind `slapenir audit`
// (show, verify, stats). It also masks secrets in paths (MaskPath) before they are
// recorded.
//
// It must not make decisions about traffic: the proxy decides and tells audit what
// happened, and reacts to Logger.Healthy by refusing requests when the log cannot
// be written. It never buffers records in user space, so a crash loses nothing
// that Write reported as written, and it never records a value it was not given:
// masking secrets is the caller's job (through MaskPath) before a Record is built.
package audit
