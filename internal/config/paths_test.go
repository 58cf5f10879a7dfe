package config

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/slapenir/slapenir/internal/yamlcheck"
)

// TestEveryProblemPathNamesAKey: the path of every problem the checks
// report, over broken files touching every section, names a key the file
// could have, so that its line (or its section's, for a key left out) is
// found by it; a misspelt path in a check would fail here.
func TestEveryProblemPathNamesAKey(t *testing.T) {
	docs := []string{
		"listen: 'x'\nmetrics: {listen: 'y'}\npolicy:\n  default: alow\n  mode: enforcing\n  allow: ['api-*.x.com', {host: a.example, methods: [FETCH], paths: [x]}]\n  deny: ['x.com:99999']\n  private_allow: [10.0.0.0/33, 'a*']\n  connect_ports: [0]\n",
		"audit: {max_size_mb: -1, max_backups: -1}\nlimits: {rate_per_second: -1, max_tunnels: 0, max_requests_per_identity: -3, max_header_bytes: -1}\n",
		"tls: {cert: '', key: '', client_ca: '', allowed_identities: ['a b']}\n",
		"intercept: {hosts: ['a b'], ca_cert: x}\n",
		"secrets:\n  credentials:\n    - name: 1bad\n      env: 'A B'\n      hosts: ['a b']\n      inject: [cookie]\n    - {name: x, file: '', env: ''}\n",
		"roles:\n  - {name: Ci, identities: ['a b'], credentials: [gihub], dlp: {mode: enforcing, exempt: ['a b']}, limits: {max_tunnels_per_identity: 0}, policy: {default: alow, allow: [{host: a.example, methods: [GET]}]}}\n  - {name: Ci}\ndefault_role: nobody\ndlp: {mode: x}\nstate_dir: ''\n",
	}
	files, _ := filepath.Glob("testdata/*.yaml")
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		docs = append(docs, string(b))
	}
	n := 0
	for i, doc := range docs {
		_, err := Parse("doc.yaml", []byte(doc))
		var probs *Problems
		if !errors.As(err, &probs) {
			continue
		}
		for _, p := range probs.List {
			if p.Path == "" {
				continue
			}
			n++
			if !yamlcheck.HasPath(configType, p.Path) {
				t.Errorf("doc %d: problem %q has path %q, which names no key of the configuration", i, p.Error(), p.Path)
			}
		}
	}
	if n < 30 {
		t.Fatalf("only %d problems with a path: the documents no longer exercise the checks", n)
	}
}

// TestAMisspeltPathHasNoLine: a key the file leaves out is shown on its
// section's line; a path that names no key at all gets no line, rather
// than its parent section's.
func TestAMisspeltPathHasNoLine(t *testing.T) {
	c, err := Parse("c.yaml", []byte("listen: ':3000'\npolicy:\n  default: allow\n"))
	if err != nil {
		t.Fatal(err)
	}
	v := validator{c: c, probs: &Problems{}}
	if got := v.line("policy.deny"); got != 2 {
		t.Errorf("line of policy.deny, left out: %d, want 2 (the policy section's)", got)
	}
	if got := v.line("policy.dney"); got != 0 {
		t.Errorf("line of policy.dney, a misspelt path: %d, want 0", got)
	}
	if got := v.line("policy.allow[3].host"); got != 2 {
		t.Errorf("line of policy.allow[3].host: %d, want 2", got)
	}
}
