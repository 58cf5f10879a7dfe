package up

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"

	"github.com/slapenir/slapenir/internal/audit"
	"github.com/slapenir/slapenir/internal/config"
	"github.com/slapenir/slapenir/internal/proxy"
)

// runningProxy is the proxy served in this process.
type runningProxy struct {
	Addr      string // host:port it listens on
	AuditFile string
	srv       *proxy.Server
	audit     *audit.Logger
	done      chan error
}

// proxyConfig is the user's configuration (or the embedded default) with
// up's listen address, audit file and state dir, and Ollama allowed.
func proxyConfig(file, listen, stateDir string, ol *ollama) (*config.Config, error) {
	cfg := config.Default()
	if file != "" {
		var err error
		if cfg, err = config.Load(file); err != nil {
			return nil, err
		}
	}
	cfg.Listen = listen
	cfg.StateDir = stateDir
	cfg.TLS = nil
	cfg.Audit.File = filepath.Join(stateDir, "audit.jsonl")
	cfg.Audit.Stdout = false
	host, _, err := net.SplitHostPort(ol.Host)
	if err != nil {
		return nil, fmt.Errorf("up: Ollama address %q is not host:port: %w", ol.Host, err)
	}
	// Ollama usually listens on this machine's loopback, which the proxy
	// refuses by default (SSRF protection): allow exactly that address.
	cfg.Policy.Allow = append(cfg.Policy.Allow, ol.Host)
	cfg.Policy.PrivateAllow = append(cfg.Policy.PrivateAllow, host)
	return cfg, nil
}

// startProxy serves cfg on ln with tlsOpts, logging through log.
func startProxy(cfg *config.Config, ln net.Listener, tlsOpts *proxy.TLSOptions, log *slog.Logger) (*runningProxy, error) {
	auditLog, err := audit.Open(audit.Options{File: cfg.Audit.File, MaxBytes: int64(cfg.Audit.MaxSizeMB) << 20, MaxBackups: cfg.Audit.MaxBackups})
	if err != nil {
		return nil, fmt.Errorf("up: cannot open the audit log: %w", err)
	}
	srv, err := proxy.New(proxy.Options{Config: cfg, Audit: auditLog, Log: log, TLS: tlsOpts})
	if err != nil {
		auditLog.Close()
		return nil, err
	}
	p := &runningProxy{Addr: ln.Addr().String(), AuditFile: cfg.Audit.File, srv: srv, audit: auditLog, done: make(chan error, 1)}
	go func() { p.done <- srv.Serve(ln) }()
	log.Info("slapenir proxy listening", "addr", p.Addr, "audit_file", p.AuditFile,
		"policy_default", cfg.Policy.Default, "policy_mode", cfg.Policy.Mode)
	return p, nil
}

// stop drains the proxy and flushes the audit log.
func (p *runningProxy) stop(ctx context.Context) error {
	err := p.srv.Shutdown(ctx)
	if serr := <-p.done; serr != nil && !errors.Is(serr, http.ErrServerClosed) {
		err = errors.Join(err, serr)
	}
	return errors.Join(err, p.audit.Close())
}
