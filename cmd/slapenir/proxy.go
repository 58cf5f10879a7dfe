package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/slapenir/slapenir/internal/audit"
	"github.com/slapenir/slapenir/internal/config"
	"github.com/slapenir/slapenir/internal/keyfile"
	"github.com/slapenir/slapenir/internal/pki/reload"
	"github.com/slapenir/slapenir/internal/proxy"
	"github.com/slapenir/slapenir/internal/secrets"
	"github.com/slapenir/slapenir/internal/version"
)

func runProxy(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("proxy", flag.ContinueOnError)
	fs.SetOutput(stderr)
	configPath := fs.String("config", "", "proxy configuration file (YAML); empty = embedded defaults")
	listen := fs.String("listen", "", "address to listen on (overrides the config's listen; default :3000)")
	insecure := fs.Bool("insecure-plaintext", false, "serve plain HTTP without client certificates (development only; loudly logged)")
	stateDir := fs.String("state-dir", "", "directory for the development CA and the proxy's own certificate (default $SLAPENIR_STATE_DIR, /var/lib/slapenir as root, else ~/.local/state/slapenir)")
	watchEvery := fs.Duration("watch-interval", time.Second, "how often the --config file is checked for changes, which are reloaded (SIGHUP reloads at once)")
	pprofAddr := fs.String("pprof", "", "serve Go's profiler on this loopback HOST:PORT for benchmarking (off by default; never on the proxy's own port)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	log := slog.New(slog.NewTextHandler(stderr, nil))

	overrides := configOverrides{listen: *listen, stateDir: *stateDir}
	cfg, err := loadProxyConfig(*configPath, overrides)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	if w := cfg.Warnings(); w != nil {
		for _, pr := range w.List {
			log.Warn(pr.Error(), "config", *configPath, "line", pr.Line)
		}
	}
	if *insecure && cfg.TLS != nil {
		fmt.Fprintln(stderr, "proxy: --insecure-plaintext conflicts with the config's tls section; drop one of them")
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()

	opts, err := auditOptions(cfg, stdout)
	if err != nil {
		fmt.Fprintf(stderr, "proxy: %v\n", err)
		return 1
	}
	auditLog, err := audit.Open(opts)
	if err != nil {
		fmt.Fprintf(stderr, "proxy: cannot open the audit log: %v\n", err)
		return 1
	}
	defer auditLog.Close()

	tlsOpts, err := proxyTLS(ctx, cfg, *insecure, log)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	creds, closeVault, err := proxyCredentials(cfg, log)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	defer closeVault()
	intercept, err := proxy.InterceptFromConfig(cfg.Intercept, cfg.State())
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	srv, err := proxy.New(proxy.Options{Config: cfg, Audit: auditLog, AuditFile: cfg.Audit.File, Log: log, TLS: tlsOpts, Credentials: creds, Intercept: intercept})
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		fmt.Fprintf(stderr, "proxy: cannot listen on %s: %v\n", cfg.Listen, err)
		return 1
	}
	if *pprofAddr != "" {
		_, stopPprof, err := servePprof(*pprofAddr, ln.Addr().String(), log)
		if err != nil {
			ln.Close()
			fmt.Fprintln(stderr, err)
			return 2
		}
		defer stopPprof()
	}
	auditWhere := cfg.Audit.File
	if auditWhere == "" {
		auditWhere = "(no file)"
	}
	log.Info("slapenir proxy listening", "addr", ln.Addr().String(), "version", version.Short(),
		"config", srv.Version(), "roles", len(cfg.Roles), "policy_default", cfg.Policy.Default, "policy_mode", cfg.Policy.Mode,
		"audit_file", auditWhere, "audit_stdout", cfg.Audit.Stdout)

	if cfg.Metrics.Listen != "" {
		stopMetrics, err := serveMetrics(cfg.Metrics.Listen, srv.MetricsHandler(), log)
		if err != nil {
			ln.Close()
			fmt.Fprintln(stderr, err)
			return 1
		}
		defer stopMetrics()
	}
	if *configPath != "" {
		// SIGHUP, or a change of the file, reloads policy, roles and
		// credentials without dropping what is open.
		hup := make(chan os.Signal, 1)
		signal.Notify(hup, syscall.SIGHUP)
		defer signal.Stop(hup)
		go newReloader(*configPath, overrides, srv, log).run(ctx, hup, *watchEvery)
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		if !errors.Is(err, http.ErrServerClosed) {
			fmt.Fprintf(stderr, "proxy: %v\n", err)
			return 1
		}
		return 0
	case <-ctx.Done():
	}
	grace := cfg.Limits.ShutdownGrace.D()
	log.Info("shutting down: draining in-flight requests and tunnels", "grace", grace.String())
	sctx, cancel := context.WithTimeout(context.Background(), grace)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		log.Warn("grace period over; cut the connections still open", "err", err)
	}
	if err := auditLog.Close(); err != nil {
		log.Error("closing the audit log failed", "err", err)
		return 1
	}
	log.Info("stopped; audit log flushed")
	return 0
}

// proxyTLS picks the proxy's mTLS: the config's tls section, else the
// development CA (the embedded default), else — only when asked — none.
func proxyTLS(ctx context.Context, cfg *config.Config, insecure bool, log *slog.Logger) (*proxy.TLSOptions, error) {
	switch {
	case insecure:
		log.Warn("INSECURE: --insecure-plaintext: serving plain HTTP; any client on the network can use this proxy without a certificate")
		return nil, nil
	case cfg.TLS != nil:
		kp, err := reload.NewKeyPair(cfg.TLS.Cert, cfg.TLS.Key)
		if err != nil {
			return nil, fmt.Errorf("proxy: tls.cert/tls.key: %w", err)
		}
		pool, err := reload.NewCAPool(cfg.TLS.ClientCA)
		if err != nil {
			return nil, fmt.Errorf("proxy: tls.client_ca: %w", err)
		}
		log.Info("mTLS on", "cert", cfg.TLS.Cert, "client_ca", cfg.TLS.ClientCA, "allowed_identities", cfg.TLS.Identities())
		return &proxy.TLSOptions{KeyPair: kp, ClientCA: pool, AllowedIdentities: cfg.TLS.Identities()}, nil
	default:
		state := cfg.State()
		opts, ca, err := proxy.DevTLS(ctx, state, proxy.DevServerNames(), log)
		if err != nil {
			return nil, err
		}
		log.Info("mTLS on with the development CA (no tls section in the config)", "ca", ca.RootFile(),
			"client_certificate", "slapenir certs dev-issue NAME --out DIR --state-dir "+state)
		return opts, nil
	}
}

// proxyCredentials opens the vault of real credentials; the returned func
// wipes it on shutdown.
func proxyCredentials(cfg *config.Config, log *slog.Logger) (*proxy.Credentials, func(), error) {
	if err := os.MkdirAll(cfg.State(), 0o700); err != nil {
		return nil, nil, fmt.Errorf("proxy: cannot create the state directory (set --state-dir or SLAPENIR_STATE_DIR to a writable one): %w", err)
	}
	key, err := secrets.LoadOrCreateKey(filepath.Join(cfg.State(), "placeholder.key"))
	if err != nil {
		return nil, nil, err
	}
	vault, err := secrets.Open(cfg.Secrets, secrets.Options{
		PlaceholderKey: key,
		Logf:           func(format string, args ...any) { log.Warn(fmt.Sprintf(format, args...)) },
	})
	if err != nil {
		return nil, nil, err
	}
	creds, err := proxy.NewCredentials(vault)
	if err != nil {
		vault.Close()
		return nil, nil, err
	}
	if delays, window := creds.DelaysStreams(); delays {
		log.Warn("a credential's value has characters beyond Latin-1, which the redactor must also look for in UTF-16; so that when bytes reach an agent never depends on the value, each flush of a streamed response may then keep back up to this many bytes, and LLM streams arrive late: prefer ASCII or Latin-1 values",
			"bytes", window)
	}
	for _, c := range vault.Credentials() {
		log.Info("credential loaded", "name", c.Name, "source", c.Source, "placeholder", c.Placeholder, "agent_env", c.AgentEnv)
	}
	return creds, func() { vault.Close() }, nil
}

// auditOptions opens the audit log keyed: its lines are HMACs under the
// audit key in the state directory, and the chain's head is checkpointed
// there too, so someone who can write the log but not the state directory
// can neither rewrite it nor cut its newest records unnoticed. The key must
// not sit beside the log.
func auditOptions(cfg *config.Config, stdout io.Writer) (audit.Options, error) {
	state := cfg.State()
	opts := audit.Options{File: cfg.Audit.File, MaxBytes: int64(cfg.Audit.MaxSizeMB) << 20, MaxBackups: cfg.Audit.MaxBackups,
		Checkpoint: filepath.Join(state, audit.CheckpointFile)}
	if cfg.Audit.Stdout {
		opts.Stdout = stdout
	}
	if cfg.Audit.File != "" && sameDir(filepath.Dir(cfg.Audit.File), state) {
		return opts, fmt.Errorf("audit.file %q is in the state directory %s, which holds the audit key; put the log in a directory of its own (someone who can write the log must not be able to read the key)", cfg.Audit.File, state)
	}
	if err := os.MkdirAll(state, 0o700); err != nil {
		return opts, fmt.Errorf("cannot create the state directory for the audit key: %w", err)
	}
	key, err := keyfile.LoadOrCreate(filepath.Join(state, audit.KeyFile), audit.KeyLen, "audit key", "logs written with the old key no longer verify against the new one")
	if err != nil {
		return opts, err
	}
	opts.Key = key
	return opts, nil
}

// sameDir reports whether a and b name the same directory.
func sameDir(a, b string) bool {
	ai, err1 := os.Stat(a)
	bi, err2 := os.Stat(b)
	if err1 == nil && err2 == nil {
		return os.SameFile(ai, bi)
	}
	aa, _ := filepath.Abs(a)
	bb, _ := filepath.Abs(b)
	return aa == bb
}

// serveMetrics serves /metrics (only) on addr, in plain HTTP, for an
// in-cluster Prometheus.
func serveMetrics(addr string, h http.Handler, log *slog.Logger) (func(), error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("proxy: cannot listen for metrics on %s: %w", addr, err)
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", h)
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	log.Info("serving metrics", "addr", ln.Addr().String(), "path", "/metrics")
	return func() { _ = srv.Close() }, nil
}
