// Package config owns the proxy's configuration file: its schema, its
// defaults, and the checks that turn a bad file into a list of problems a
// user can fix, each with the line it is on.
//
// It must not act on the configuration (no listening, no policy decisions,
// no file creation): other packages receive a validated Config and do that.
// New sections are added by adding a struct field with a yaml tag, a default
// in Default and its checks in Validate; the decoder needs no change. A
// section another package owns keeps its schema and checks there and is
// embedded here: the policy (policy.Config) and the credentials
// (secrets.Config), whose problems Validate reports with their lines.
package config
