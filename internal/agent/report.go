package agent

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/net/http/httpproxy"

	"github.com/slapenir/slapenir/internal/pki/certfile"
	"github.com/slapenir/slapenir/internal/pki/enroll"
	"github.com/slapenir/slapenir/internal/relay"
	"github.com/slapenir/slapenir/internal/safetext"
	"github.com/slapenir/slapenir/internal/secrets"
)

func (cfg *Config) defaults() {
	if cfg.Out == nil {
		cfg.Out = os.Stdout
	}
	if cfg.Getenv == nil {
		cfg.Getenv = os.Getenv
	}
	if cfg.Interval <= 0 {
		cfg.Interval = 30 * time.Second
	}
	if cfg.HealthURL == "" {
		cfg.HealthURL = healthURL(cfg.Getenv)
	}
	if cfg.ProxyURL == "" {
		// up passes only --health-url, the proxy's URL and /health.
		cfg.ProxyURL = firstSet(cfg.Getenv, "SLAPENIR_PROXY_URL")
		if cfg.ProxyURL == "" {
			cfg.ProxyURL = strings.TrimSuffix(cfg.HealthURL, "/health")
		}
	}
}

// logf writes one line in the seed's format; init adds the [agent] prefix.
func (cfg *Config) logf(level, msg string) {
	fmt.Fprintf(cfg.Out, "[%s] [%s] %s\n", time.Now().Format("2006-01-02 15:04:05"), level, msg)
}

// Mask shows a credential as the seed did: its first 8 characters and "...",
// or "***" when it is 8 characters or shorter.
func Mask(v string) string {
	if len(v) > 8 {
		return v[:8] + "..."
	}
	return "***"
}

// reportCredentials says which placeholders the agent holds. The names
// come from the proxy (GET /placeholders, with the agent's certificate: the
// variables it announces to this agent's role, which init or up exported),
// and each is checked against the announced placeholder, so that a variable
// left unset, or holding something else (a real key pasted into the
// agent's environment), shows. Only when the proxy cannot be asked are the
// seed's fixed names reported, set or not.
func (cfg *Config) reportCredentials() {
	list, err := fetchPlaceholders(cfg.ProxyURL, cfg.certsDir())
	if err != nil {
		cfg.logf("WARNING", fmt.Sprintf("Cannot ask the proxy which placeholders this agent holds (%v); checking the usual names instead", err))
		cfg.logf("INFO", "Environment Variables Status:")
		for _, name := range Credentials {
			if v := cfg.Getenv(name); v != "" {
				cfg.logf("INFO", fmt.Sprintf("  ✓ %s: %s", name, Mask(v)))
			} else {
				cfg.logf("WARNING", fmt.Sprintf("  ✗ %s: Not set", name))
			}
		}
		return
	}
	cfg.logf("INFO", fmt.Sprintf("Placeholders the proxy announces to this agent (%s/placeholders): %d", strings.TrimSuffix(cfg.ProxyURL, "/"), len(list)))
	cfg.logf("INFO", "Environment Variables Status:")
	if len(list) == 0 {
		cfg.logf("INFO", "  (none: the proxy holds no credential this agent's role may use)")
	}
	for _, p := range list {
		switch v := cfg.Getenv(p.Env); {
		case p.Env == "":
			cfg.logf("INFO", fmt.Sprintf("  - %s: no variable (the credential sets no agent_env); its placeholder is %s", p.Name, Mask(p.Placeholder)))
		case v == p.Placeholder:
			cfg.logf("INFO", fmt.Sprintf("  ✓ %s: %s", p.Env, Mask(v)))
		case v == "":
			cfg.logf("WARNING", fmt.Sprintf("  ✗ %s: Not set (the proxy announces the placeholder %s for credential %s)", p.Env, Mask(p.Placeholder), p.Name))
		default:
			// Never shown, not even masked: it is not the placeholder,
			// so it may be a real secret.
			cfg.logf("WARNING", fmt.Sprintf("  ✗ %s: holds something other than the placeholder of credential %s (not shown); the proxy injects only for its placeholder %s", p.Env, p.Name, Mask(p.Placeholder)))
		}
	}
}

// certsDir is the agent's certificate directory, the seed's
// /home/agent/certs (enroll.DefaultDir, where bootstrap writes it) unless
// SLAPENIR_CERTS_DIR says otherwise.
func (cfg *Config) certsDir() string {
	if dir := cfg.Getenv("SLAPENIR_CERTS_DIR"); dir != "" {
		return dir
	}
	return enroll.DefaultDir
}

// fetchPlaceholders asks the proxy at proxyURL for the placeholders this
// agent may use, over mTLS with the certificate in dir for an https URL
// (plain HTTP for a proxy run with --insecure-plaintext), once and
// briefly: the report must not hold the agent up.
func fetchPlaceholders(proxyURL, dir string) ([]secrets.Placeholder, error) {
	up, err := relay.NewUpstream(proxyURL, certfile.Dir(dir))
	if err != nil {
		return nil, err
	}
	t := up.Transport(false)
	defer t.CloseIdleConnections()
	client := &http.Client{Timeout: 5 * time.Second, Transport: t}
	u := up.URL().String() + "/placeholders"
	resp, err := client.Get(u)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return nil, fmt.Errorf("GET %s: %w", u, err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %s: %s", u, resp.Status, safetext.Cut(strings.TrimSpace(string(body)), 200))
	}
	var list []secrets.Placeholder
	if err := json.Unmarshal(body, &list); err != nil {
		return nil, fmt.Errorf("GET %s: not the proxy's list of placeholders: %w", u, err)
	}
	return list, nil
}

func (cfg *Config) reportEnvironment() {
	cfg.logf("INFO", "Checking agent environment...")
	for _, name := range []string{"HTTP_PROXY", "HTTPS_PROXY"} {
		if v := cfg.Getenv(name); v != "" {
			cfg.logf("INFO", fmt.Sprintf("%s: %s", name, v))
		} else {
			cfg.logf("WARNING", name+" not set")
		}
	}
	// The certificate directory is the seed's /home/agent/certs. (Not
	// SSL_CERT_FILE: every TLS library reads that as its trust store, so it
	// must never name the client certificate.)
	dir := cfg.certsDir()
	for _, f := range []struct{ name, what string }{
		{"cert.pem", "Client certificate"},
		{"key.pem", "Client key"},
		{"root_ca.pem", "CA certificate"},
	} {
		path := filepath.Join(dir, f.name)
		if _, err := os.Stat(path); err == nil {
			cfg.logf("INFO", fmt.Sprintf("%s found: %s", f.what, path))
		} else {
			cfg.logf("WARNING", fmt.Sprintf("%s not found: %s", f.what, path))
		}
	}
}

func healthURL(getenv func(string) string) string {
	if u := getenv("SLAPENIR_PROXY_URL"); u != "" {
		return strings.TrimSuffix(u, "/") + "/health"
	}
	host, port := getenv("PROXY_HOST"), getenv("PROXY_PORT")
	if host == "" {
		host = "proxy"
	}
	if port == "" {
		port = "3000"
	}
	return "http://" + host + ":" + port + "/health"
}

func firstSet(getenv func(string) string, names ...string) string {
	for _, n := range names {
		if v := getenv(n); v != "" {
			return v
		}
	}
	return ""
}

func (cfg *Config) checkProxyHealth() bool {
	cfg.logf("INFO", "Testing proxy health at: "+cfg.HealthURL)
	proxy := (&httpproxy.Config{
		HTTPProxy:  firstSet(cfg.Getenv, "HTTP_PROXY", "http_proxy"),
		HTTPSProxy: firstSet(cfg.Getenv, "HTTPS_PROXY", "https_proxy"),
		NoProxy:    firstSet(cfg.Getenv, "NO_PROXY", "no_proxy"),
	}).ProxyFunc()
	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
		Proxy: func(r *http.Request) (*url.URL, error) { return proxy(r.URL) },
	}}
	resp, err := client.Get(cfg.HealthURL)
	if err != nil {
		cfg.logf("WARNING", fmt.Sprintf("Proxy health check error: %v", err))
		return false
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	if resp.StatusCode != http.StatusOK {
		cfg.logf("WARNING", fmt.Sprintf("✗ Proxy health check failed: %d", resp.StatusCode))
		return false
	}
	cfg.logf("INFO", "✓ Proxy health check passed: "+strings.TrimSpace(string(body)))
	return true
}
