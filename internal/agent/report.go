package agent

import (
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/net/http/httpproxy"
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

func (cfg *Config) reportCredentials() {
	cfg.logf("INFO", "Environment Variables Status:")
	for _, name := range Credentials {
		if v := cfg.Getenv(name); v != "" {
			cfg.logf("INFO", fmt.Sprintf("  ✓ %s: %s", name, Mask(v)))
		} else {
			cfg.logf("WARNING", fmt.Sprintf("  ✗ %s: Not set", name))
		}
	}
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
	dir := cfg.Getenv("SLAPENIR_CERTS_DIR")
	if dir == "" {
		dir = "/home/agent/certs"
	}
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
