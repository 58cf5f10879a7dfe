// Package supervise is the engine of `slapenir init`, the agent container's
// PID 1: it reaps every child, starts services in dependency order as their
// configured users, applies the seed's restart policy, prefixes their output,
// stops them in reverse order, and answers `slapenir ctl` on a unix socket.
//
// It owns wait4(-1): nothing in the init process may start a child any other
// way than through its reaper (no exec.Cmd.Wait), or exit statuses are lost.
// It must not parse the service file (package initconf does) nor know what any
// particular service does.
package supervise
