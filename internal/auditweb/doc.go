// Package auditweb serves a live web page over audit log files (slapenir
// audit serve): the newest records streaming in as the proxy writes them,
// filters by identity, host, decision and reason, counts per host and per
// refusal reason, and the chain's verification state.
//
// It owns the page (embedded: plain HTML and JavaScript, no build step) and
// the small API behind it (the records so far, a server-sent event stream
// of new ones, the verification state), and the checks in front of both
// (guard.go): a request is served only when its Host is a name the server
// listens on, it does not come from another origin, and it carries the
// run's secret token. It must never write to a log; it reads them, as
// audit show does, and holds at most Keep records in memory. It must never
// log the token: only the caller prints it, once, in the URL for the
// operator.
package auditweb
