package up

import (
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"testing"

	"github.com/slapenir/slapenir/internal/config"
	"github.com/slapenir/slapenir/internal/policy"
)

// The proxy child reads exactly what up decided: the user's policy and
// credentials kept, up's listen address, audit file, state and tls set, and
// Ollama allowed.
func TestProxyConfigKeepsTheUsersAndAddsUps(t *testing.T) {
	dir := t.TempDir()
	user := filepath.Join(dir, "user.yaml")
	if err := os.WriteFile(user, []byte(`policy:
  default: deny
  allow: ["api.example.com:443"]
limits:
  shutdown_grace: 3s
secrets:
  credentials:
    - name: demo
      env: DEMO_TOKEN
      hosts: ["api.example.com"]
`), 0o600); err != nil {
		t.Fatal(err)
	}
	tls := &config.TLS{Cert: "/s/cert.pem", Key: "/s/key.pem", ClientCA: "/s/root.pem"}
	cfg, replaced, opened, err := proxyConfig(user, "10.213.1.1:3000", dir, tls, &ollama{Host: "127.0.0.1:11434"})
	if err != nil {
		t.Fatal(err)
	}
	if len(replaced) != 0 {
		t.Errorf("replaced %v, but the user set none of up's settings", replaced)
	}
	if want := "up added 127.0.0.1:11434 to private_allow for Ollama: that address on that port alone"; opened != want {
		t.Errorf("note %q, want %q", opened, want)
	}
	path := filepath.Join(dir, "proxy.yaml")
	if err := writeProxyConfig(cfg, path); err != nil {
		t.Fatal(err)
	}
	got, err := config.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if got.Listen != "10.213.1.1:3000" || got.StateDir != dir || got.Audit.File != filepath.Join(dir, "audit", "audit.jsonl") || got.Audit.Stdout {
		t.Errorf("listen %q, state %q, audit %q stdout %v: not up's", got.Listen, got.StateDir, got.Audit.File, got.Audit.Stdout)
	}
	if got.TLS == nil || got.TLS.Cert != tls.Cert || got.TLS.Key != tls.Key || got.TLS.ClientCA != tls.ClientCA {
		t.Errorf("tls %+v, want %+v", got.TLS, tls)
	}
	if got.Policy.Default != "deny" || got.Limits.ShutdownGrace.String() != "3s" {
		t.Errorf("the user's policy default %q / shutdown grace %s were not kept", got.Policy.Default, got.Limits.ShutdownGrace)
	}
	if !reflect.DeepEqual(got.Policy.Allow, policy.Hosts("api.example.com:443", "127.0.0.1:11434")) || !slices.Contains(got.Policy.PrivateAllow, "127.0.0.1:11434") || slices.Contains(got.Policy.PrivateAllow, "127.0.0.1") {
		t.Errorf("allow %v, private_allow %v: want the user's entries and Ollama's address on Ollama's port only", got.Policy.Allow, got.Policy.PrivateAllow)
	}
	if len(got.Secrets.Credentials) != 1 || got.Secrets.Credentials[0].Env != "DEMO_TOKEN" {
		t.Errorf("credentials %+v, want the user's demo credential", got.Secrets.Credentials)
	}
	if fi, _ := os.Stat(path); fi.Mode().Perm() != 0o600 {
		t.Errorf("proxy.yaml mode %v, want 0600", fi.Mode().Perm())
	}
}

// A tls section (or listen, audit file…) of the user's is replaced by up's,
// and up says which: none is dropped silently.
func TestProxyConfigNamesWhatItReplaced(t *testing.T) {
	dir := t.TempDir()
	user := filepath.Join(dir, "user.yaml")
	for _, f := range []string{"c.pem", "k.pem", "ca.pem"} {
		os.WriteFile(filepath.Join(dir, f), nil, 0o600)
	}
	os.WriteFile(user, []byte("listen: 127.0.0.1:4000\naudit:\n  file: /var/log/mine.jsonl\ntls:\n  cert: "+dir+"/c.pem\n  key: "+dir+"/k.pem\n  client_ca: "+dir+"/ca.pem\n"), 0o600)
	_, replaced, _, err := proxyConfig(user, "10.213.1.1:3000", dir, nil, &ollama{Host: "127.0.0.1:11434"})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"listen 127.0.0.1:4000", "the tls section (up's CA issues the proxy's and the agent's certificates)", "audit.file /var/log/mine.jsonl"}
	if !slices.Equal(replaced, want) {
		t.Errorf("replaced %q, want %q", replaced, want)
	}
}

// Ollama's private_allow entry is its address or name bound to its port,
// in the form policy reads, and an address that is not host:port fails.
func TestOllamaPrivateAllowIsPortBound(t *testing.T) {
	for in, want := range map[string]string{
		"127.0.0.1:11434":        "127.0.0.1:11434",
		"[::1]:11434":            "[::1]:11434",
		"[::ffff:127.0.0.1]:80":  "127.0.0.1:80",
		"localhost:11434":        "localhost:11434",
		"host.docker.internal:1": "host.docker.internal:1",
	} {
		if got, err := ollamaPrivateAllow(in); err != nil || got != want {
			t.Errorf("ollamaPrivateAllow(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, bad := range []string{"127.0.0.1", ":11434", "127.0.0.1:0", "127.0.0.1:x", "127.0.0.1:70000"} {
		if got, err := ollamaPrivateAllow(bad); err == nil {
			t.Errorf("ollamaPrivateAllow(%q) = %q, want an error", bad, got)
		}
	}
}

// TestOpenOllamaSaysWhatUpAdded: up adds Ollama's address on its port to
// private_allow only when the user's policy does not already let it
// through, and its note says what up added, never that the agent can reach
// that address and port alone when the user's own entries open more.
func TestOpenOllamaSaysWhatUpAdded(t *testing.T) {
	for _, c := range []struct {
		ollama string
		user   []string
		added  string // the entry up appends, "" for none
		note   string
		report bool // policy.mode: report, where refusals are let through
	}{
		{"127.0.0.1:11434", nil, "127.0.0.1:11434", "up added 127.0.0.1:11434 to private_allow for Ollama: that address on that port alone", false},
		{"127.0.0.1:11434", []string{"127.0.0.1:8080"}, "127.0.0.1:11434", "up added 127.0.0.1:11434 to private_allow for Ollama: that address on that port alone", false},
		{"127.0.0.1:11434", []string{"127.0.0.0/8"}, "", `up added nothing to private_allow for Ollama: 127.0.0.1:11434 is already opened by its entry "127.0.0.0/8"`, false},
		{"127.0.0.1:11434", []string{"127.0.0.1"}, "", `up added nothing to private_allow for Ollama: 127.0.0.1:11434 is already opened by its entry "127.0.0.1/32"`, false},
		{"127.0.0.1:11434", []string{"127.0.0.1:11434"}, "", `up added nothing to private_allow for Ollama: 127.0.0.1:11434 is already opened by its entry "127.0.0.1:11434"`, false},
		{"[::1]:11434", []string{"127.0.0.0/8"}, "[::1]:11434", "up added [::1]:11434 to private_allow for Ollama: that address on that port alone", false},
		{"ollama.lan:11434", nil, "ollama.lan:11434", "up added ollama.lan:11434 to private_allow for Ollama: that address on that port alone", false},
		{"ollama.lan:11434", []string{"ollama.lan"}, "", `up added nothing to private_allow for Ollama: ollama.lan:11434 is already opened by its entry "ollama.lan"`, false},
		{"ollama.lan:11434", []string{"10.0.0.0/8"}, "ollama.lan:11434", "up added ollama.lan:11434 to private_allow for Ollama: that address on that port alone", false},
		{"203.0.113.5:11434", nil, "", "up added nothing to private_allow for Ollama: 203.0.113.5:11434 is a public address", false},
		// In report mode a refusal comes back allowed, naming the
		// protected range: that is no entry opening Ollama.
		{"127.0.0.1:11434", nil, "127.0.0.1:11434", "up added 127.0.0.1:11434 to private_allow for Ollama: that address on that port alone", true},
	} {
		pc := policy.Default()
		pc.PrivateAllow = slices.Clone(c.user)
		if c.report {
			pc.Mode = "report"
		}
		note, err := openOllama(&pc, c.ollama)
		if err != nil {
			t.Fatalf("%s with private_allow %v: %v", c.ollama, c.user, err)
		}
		want := slices.Clone(c.user)
		if c.added != "" {
			want = append(want, c.added)
		}
		if note != c.note || !slices.Equal(pc.PrivateAllow, want) {
			t.Errorf("%s with private_allow %v: note %q, private_allow %v; want %q, %v", c.ollama, c.user, note, pc.PrivateAllow, c.note, want)
		}
	}
}
