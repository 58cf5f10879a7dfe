package up

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/slapenir/slapenir/internal/config"
	"github.com/slapenir/slapenir/internal/hostport"
	"github.com/slapenir/slapenir/internal/pki/certfile"
	"github.com/slapenir/slapenir/internal/policy"
)

// proxyConfig is the user's configuration (or the embedded default) with
// up's listen address, audit file, state dir and tls section, and Ollama
// allowed. replaced names the user's own settings up overrode, so none is
// dropped silently; opened says what up added to private_allow for Ollama.
func proxyConfig(file, listen, stateDir string, tls *config.TLS, ol *ollama) (cfg *config.Config, replaced []string, opened string, err error) {
	cfg = config.Default()
	if file != "" {
		if cfg, err = config.Load(file); err != nil {
			return nil, nil, "", err
		}
		def := config.Default()
		for _, r := range []struct {
			key  string
			mine bool
		}{
			{"listen " + cfg.Listen, cfg.Listen != def.Listen},
			{"state_dir " + cfg.StateDir, cfg.StateDir != def.StateDir},
			{"the tls section (up's CA issues the proxy's and the agent's certificates)", cfg.TLS != nil},
			{"audit.file " + cfg.Audit.File, cfg.Audit.File != def.Audit.File},
		} {
			if r.mine {
				replaced = append(replaced, r.key)
			}
		}
	}
	cfg.Listen = listen
	cfg.StateDir = stateDir
	cfg.TLS = tls
	// Its own directory: the state directory holds the audit key.
	cfg.Audit.File = filepath.Join(stateDir, "audit", "audit.jsonl")
	cfg.Audit.Stdout = false
	if opened, err = openOllama(&cfg.Policy, ol.Host); err != nil {
		return nil, nil, "", err
	}
	cfg.Policy.Allow = append(cfg.Policy.Allow, policy.Rule{Host: ol.Host})
	return cfg, replaced, opened, nil
}

// openOllama lets pc's address check pass the Ollama at hostPort, and says
// what it added. Ollama usually listens on this machine's loopback, which
// the proxy refuses by default (SSRF protection): up adds that address on
// Ollama's port alone, since the whole address would hand the confined
// agent every other service on the host's loopback (an operator's audit
// page, a database, a debugger). When pc already lets it through (an
// entry of the user's, a public address) up adds nothing, and says so:
// the note is about what up opened, not about what the user's
// configuration opens besides.
func openOllama(pc *policy.Config, hostPort string) (string, error) {
	entry, err := ollamaPrivateAllow(hostPort)
	if err != nil {
		return "", err
	}
	p, err := policy.New(*pc)
	if err != nil {
		return "", fmt.Errorf("up: %v", err)
	}
	host, port, _ := hostport.Parse(entry, 0)
	ip, err := netip.ParseAddr(host)
	if err != nil {
		// A name's address is known only after DNS, so only private_allow's
		// names can be said to open it already; 0.0.0.0 stands for its
		// address because no range written for a service holds it.
		ip = netip.IPv4Unspecified()
	}
	switch d := p.CheckAddr(host, ip, port); {
	case d.Allow && d.Reason == policy.ReasonPublicAddress:
		return fmt.Sprintf("up added nothing to private_allow for Ollama: %s is a public address", hostPort), nil
	case d.Allow && !d.Report && d.Reason == policy.ReasonPrivateAllow:
		// Not in report mode, where a refusal is let through: the rule
		// there is the protected range, not an entry that opens it.
		return fmt.Sprintf("up added nothing to private_allow for Ollama: %s is already opened by its entry %q", hostPort, d.Rule), nil
	}
	pc.PrivateAllow = append(pc.PrivateAllow, entry)
	return fmt.Sprintf("up added %s to private_allow for Ollama: that address on that port alone", entry), nil
}

// ollamaPrivateAllow is the private_allow entry for the Ollama at hostPort:
// its address (or name) bound to its port, written as policy reads it
// ("127.0.0.1:11434", "[::1]:11434", "ollama.lan:11434").
func ollamaPrivateAllow(hostPort string) (string, error) {
	host, port, err := hostport.Parse(hostPort, 0)
	if err != nil {
		return "", fmt.Errorf("up: Ollama address %q is not host:port (%v)", hostPort, err)
	}
	if ip, err := netip.ParseAddr(host); err == nil {
		host = ip.Unmap().String()
	}
	entry := hostport.Join(host, port)
	if err := policy.CheckPrivateAllow(entry); err != nil {
		return "", fmt.Errorf("up: Ollama address %q: %v", hostPort, err)
	}
	return entry, nil
}

// writeProxyConfig dumps cfg where `slapenir proxy --config` reads it, and
// reads it back so that a configuration the proxy would refuse fails here,
// with the proxy's own message.
func writeProxyConfig(cfg *config.Config, path string) error {
	data, err := yaml.Marshal(cfg)
	if err != nil {
		return fmt.Errorf("up: cannot write the proxy configuration: %w", err)
	}
	// 0600: the secrets section names where real credentials come from.
	if err := os.WriteFile(path, data, 0o600); err != nil {
		return fmt.Errorf("up: cannot write the proxy configuration: %w", err)
	}
	if _, err := config.Load(path); err != nil {
		return fmt.Errorf("up: the proxy configuration up generated does not load (a bug in up; please report it): %w", err)
	}
	return nil
}

// startProxy runs `slapenir proxy` and waits until it answers /health over
// TLS, verified against root as "proxy". (A bare TCP probe would leave a
// failed handshake in the audit log.)
func startProxy(exe, cfgPath, stateDir, addr, root string, env []string, out io.Writer) (*child, error) {
	roots, err := certfile.ReadCerts(root)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	for _, r := range roots {
		pool.AddCert(r)
	}
	probe := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{
		Proxy: nil, DisableKeepAlives: true,
		TLSClientConfig: &tls.Config{ServerName: "proxy", RootCAs: pool, MinVersion: tls.VersionTLS12},
	}}
	c, err := startChild([]string{exe, "proxy", "--config", cfgPath, "--state-dir", stateDir}, env, out)
	if err != nil {
		return nil, err
	}
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); {
		if resp, err := probe.Get("https://" + addr + "/health"); err == nil {
			resp.Body.Close()
			return c, nil
		}
		select {
		case <-c.done:
			return nil, fmt.Errorf("up: the proxy exited before listening on %s (%v); see its log above", addr, c.err)
		case <-time.After(50 * time.Millisecond):
		}
	}
	_ = c.stop(c.cmd.Process.Pid, time.Second)
	return nil, fmt.Errorf("up: the proxy did not answer https://%s/health within 30s", addr)
}
