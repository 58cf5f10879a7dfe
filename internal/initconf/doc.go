// Package initconf owns the service file of `slapenir init`: its YAML schema,
// its defaults and its validation, with every error carrying the file name and
// line number of the offending node.
//
// It only describes services. It must not start processes, resolve users
// against the system, or know about signals beyond parsing their names: that
// is the job of package supervise.
package initconf
