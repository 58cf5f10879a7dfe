// Package yamlcheck is what the two YAML files SLAPENIR reads — the
// proxy's configuration (config) and init's service file (initconf) —
// share to read them and report what is wrong: one decoder that walks the
// YAML beside tagged Go structs (Decoder), one problem type, one output
// format ("file:line: key.path: message", every problem at once, in line
// order), and one walk over a mapping's keys that makes unknown and
// repeated keys problems, with a suggestion for a typo.
//
// It owns parsing, the walk, the kinds of value every file shares
// (durations, lists, mappings) and the reporting; it must not know either
// file's keys, or check what their values mean: each file's types do that
// (NodeDecoder, yaml.Unmarshaler) and its own validation after decoding.
package yamlcheck
