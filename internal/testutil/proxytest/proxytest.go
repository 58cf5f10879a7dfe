// Package proxytest runs the real SLAPENIR proxy on a loopback port for the
// tests of packages that talk to it (the relay, ollama-verify). It holds no
// test logic of its own; the proxy's own tests live in package proxy.
package proxytest

import (
	"context"
	"log/slog"
	"net"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/slapenir/slapenir/internal/audit"
	"github.com/slapenir/slapenir/internal/config"
	"github.com/slapenir/slapenir/internal/pki/devca"
	"github.com/slapenir/slapenir/internal/proxy"
	"github.com/slapenir/slapenir/internal/secrets"
)

// Proxy is a running proxy.
type Proxy struct {
	Server    *proxy.Server
	URL       string // http://host:port, or https:// with TLS
	AuditFile string // its audit log, one JSON record per line

	stopOnce sync.Once
	stop     func(grace time.Duration)
}

// LoopbackConfig is the embedded default with loopback upstreams allowed
// (every upstream in tests listens on 127.0.0.1), no rate limit, and CONNECT
// open to connectPorts besides 443.
func LoopbackConfig(connectPorts ...int) *config.Config {
	cfg := config.Default()
	cfg.Policy.PrivateAllow = append(cfg.Policy.PrivateAllow, "127.0.0.1/32")
	cfg.Limits.RatePerSecond = 0
	cfg.Policy.ConnectPorts = append(cfg.Policy.ConnectPorts, connectPorts...)
	return cfg
}

// Start serves o on ln (nil: a new loopback listener). A nil o.Config is
// LoopbackConfig(); o.Audit is always a fresh file in a temp directory. The
// proxy stops at the end of the test, or earlier with Stop.
func Start(t testing.TB, o proxy.Options, ln net.Listener) *Proxy {
	t.Helper()
	if o.Config == nil {
		o.Config = LoopbackConfig()
	}
	if err := o.Config.Validate(); err != nil {
		t.Fatalf("test config invalid: %v", err)
	}
	p := &Proxy{AuditFile: filepath.Join(t.TempDir(), "audit.jsonl")}
	al, err := audit.Open(audit.Options{File: p.AuditFile})
	if err != nil {
		t.Fatal(err)
	}
	o.Audit = al
	if p.Server, err = proxy.New(o); err != nil {
		t.Fatal(err)
	}
	if ln == nil {
		if ln, err = net.Listen("tcp", "127.0.0.1:0"); err != nil {
			t.Fatal(err)
		}
	}
	scheme := "http"
	if o.TLS != nil {
		scheme = "https"
	}
	p.URL = scheme + "://" + ln.Addr().String()
	done := make(chan struct{})
	go func() { _ = p.Server.Serve(ln); close(done) }()
	p.stop = func(grace time.Duration) {
		ctx, cancel := context.WithTimeout(context.Background(), grace)
		defer cancel()
		_ = p.Server.Shutdown(ctx)
		<-done
		_ = al.Close()
	}
	t.Cleanup(func() { p.Stop(time.Second) })
	return p
}

// Stop shuts the proxy down, cutting what is still open after grace. Only
// the first call does anything.
func (p *Proxy) Stop(grace time.Duration) {
	p.stopOnce.Do(func() { p.stop(grace) })
}

// DevMTLS is mTLS from a fresh development CA in a temp directory — the
// proxy's embedded default, set up by proxy.DevTLS — accepting client
// certificates whose identity matches allowed (none: any), with the CA to
// issue them (devca.Client) from.
func DevMTLS(t testing.TB, allowed ...string) (*proxy.TLSOptions, *devca.CA) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	opts, ca, err := proxy.DevTLS(ctx, t.TempDir(), []string{"localhost", "127.0.0.1"}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	opts.AllowedIdentities = allowed
	return opts, ca
}

// Credentials opens a vault of cfg the way slapenir proxy does, its
// sources' variables looked up in env, and returns the proxy's credentials
// from it, and the vault (for its placeholders); the vault is closed when
// the test ends.
func Credentials(t testing.TB, cfg secrets.Config, env map[string]string) (*proxy.Credentials, *secrets.Vault) {
	t.Helper()
	v, err := secrets.Open(cfg, secrets.Options{LookupEnv: func(k string) (string, bool) { v, ok := env[k]; return v, ok }, Logf: t.Logf})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { v.Close() })
	creds, err := proxy.NewCredentials(v)
	if err != nil {
		t.Fatal(err)
	}
	return creds, v
}
