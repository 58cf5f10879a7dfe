package config

import (
	"strings"
	"testing"
)

// TestPlaintextHTTPToPublicHostWarns: plaintext_http on a credential whose
// hosts are all local (private or loopback addresses, localhost and the
// names kept off the public DNS, names private_allow lists) is quiet; with
// any public host it is a warning naming that host, on the option's line,
// and the file is still valid.
func TestPlaintextHTTPToPublicHostWarns(t *testing.T) {
	cred := func(hosts string) string {
		return "policy:\n  private_allow: [ollama.lan, \"*.corp.example\", 100.64.0.0/10]\nsecrets:\n  credentials:\n    - name: ci\n      env: T\n      hosts: " + hosts + "\n      plaintext_http: true\n"
	}
	for _, hosts := range []string{
		"[127.0.0.1, \"[::1]:8080\", 10.1.2.3, 192.168.0.9:11434, fd00::1, 100.64.1.1]",
		"[localhost, \"localhost:11434\", ollama.localhost, \"*.localhost\"]",
		"[host.docker.internal, \"*.internal\", printer.local, ollama, \"ollama:11434\"]",
		"[ollama.lan, \"ollama.lan:11434\", a.corp.example, \"*.b.corp.example\"]",
	} {
		cfg, err := Parse("c.yaml", []byte(cred(hosts)))
		if err != nil {
			t.Fatalf("hosts %s: %v", hosts, err)
		}
		if w := cfg.Warnings(); w != nil {
			t.Errorf("hosts %s: warned %v, want nothing (every host is local)", hosts, w)
		}
	}
	for _, c := range []struct{ hosts, public string }{
		{"[api.example.com]", "api.example.com"},
		{"[127.0.0.1, api.example.com]", "api.example.com"},
		{"[8.8.8.8]", "8.8.8.8"},
		{"[\"*.lan\"]", "*.lan"}, // private_allow names one host under it
		{"[\"*.corp.example\", evil.com:80]", "evil.com:80"},
		{"[localhost.example.com]", "localhost.example.com"},
	} {
		cfg, err := Parse("c.yaml", []byte(cred(c.hosts)))
		if err != nil {
			t.Fatalf("hosts %s: %v", c.hosts, err)
		}
		w := cfg.Warnings()
		if w == nil {
			t.Errorf("hosts %s: no warning, want one naming %s", c.hosts, c.public)
			continue
		}
		if msg := w.Error(); !strings.HasPrefix(msg, "c.yaml:8: warning: secrets.credentials[0].plaintext_http:") || !strings.Contains(msg, c.public) {
			t.Errorf("hosts %s: warned %q, want line 8 naming %s", c.hosts, msg, c.public)
		}
	}
	cfg, err := Parse("c.yaml", []byte(strings.Replace(cred("[api.example.com]"), "plaintext_http: true", "plaintext_http: false", 1)))
	if err != nil {
		t.Fatal(err)
	}
	if w := cfg.Warnings(); w != nil {
		t.Errorf("without plaintext_http: warned %v", w)
	}
}
