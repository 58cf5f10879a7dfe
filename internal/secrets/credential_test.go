package secrets

import "testing"

// TestMayInject: a host entry without a port is any port of the host, over
// TLS only unless the credential allows plain http; one with a port is that
// port alone, either way.
func TestMayInject(t *testing.T) {
	cfg := Config{Credentials: []CredentialConfig{
		{Name: "api", Env: "A", Hosts: []string{"api.example.com"}},
		{Name: "bound", Env: "B", Hosts: []string{"git.example.com:8443"}},
		{Name: "local", Env: "C", Hosts: []string{"127.0.0.1:11434", "ollama.internal"}, PlaintextHTTP: true},
	}}
	creds, err := cfg.Describe()
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		cred int
		host string
		port int
		tls  bool
		want bool
	}{
		{0, "api.example.com", 443, true, true},
		{0, "api.example.com", 8443, true, true},
		{0, "api.example.com", 80, false, false},
		{0, "api.example.com", 443, false, false}, // http://api.example.com:443
		{0, "evil.example.com", 443, true, false},
		{1, "git.example.com", 8443, true, true},
		{1, "git.example.com", 443, true, false},
		{1, "git.example.com", 8443, false, false},
		{2, "127.0.0.1", 11434, false, true},
		{2, "127.0.0.1", 11434, true, true},
		{2, "127.0.0.1", 8080, false, false},
		{2, "ollama.internal", 80, false, true},
	} {
		if got := creds[c.cred].MayInject(c.host, c.port, c.tls); got != c.want {
			t.Errorf("%s to %s:%d (tls %v): MayInject = %v, want %v", creds[c.cred].Name, c.host, c.port, c.tls, got, c.want)
		}
	}
}
