package main

import (
	"context"
	"crypto/sha256"
	"errors"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/slapenir/slapenir/internal/config"
	"github.com/slapenir/slapenir/internal/proxy"
)

// configOverrides are the command line's settings over the file's.
type configOverrides struct{ listen, stateDir string }

// loadProxyConfig is the configuration slapenir proxy runs: the file at
// path (the embedded defaults when path is ""), with the command line's
// overrides.
func loadProxyConfig(path string, o configOverrides) (*config.Config, error) {
	cfg := config.Default()
	if path != "" {
		var err error
		if cfg, err = config.Load(path); err != nil {
			return nil, err
		}
	}
	if o.listen != "" {
		cfg.Listen = o.listen
	}
	if o.stateDir != "" {
		cfg.StateDir = o.stateDir
	}
	return cfg, nil
}

// reloader applies a changed configuration file to a running proxy: on
// SIGHUP (which also rereads the credentials' files and variables), and
// when the file's contents change (checked every interval, which also
// catches an editor's rename and a Kubernetes ConfigMap's symlink swap).
// A file with any problem is refused whole and the old configuration keeps
// running; each problem is logged with its line, as check-config prints it.
type reloader struct {
	path string
	o    configOverrides
	srv  *proxy.Server
	log  *slog.Logger
	// seen is the hash of the file's contents last acted on, so a change
	// is reloaded (or refused) once.
	seen [32]byte
}

func newReloader(path string, o configOverrides, srv *proxy.Server, log *slog.Logger) *reloader {
	r := &reloader{path: path, o: o, srv: srv, log: log}
	if b, err := os.ReadFile(path); err == nil {
		r.seen = sha256.Sum256(b)
	}
	return r
}

// run reloads on each signal from hup and on each change of the file seen
// every interval, until ctx ends.
func (r *reloader) run(ctx context.Context, hup <-chan os.Signal, interval time.Duration) {
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-hup:
			r.reload("SIGHUP")
		case <-tick.C:
			b, err := os.ReadFile(r.path)
			if err != nil {
				continue // mid-rename, or gone: the next look, or a SIGHUP, says
			}
			if sum := sha256.Sum256(b); sum != r.seen {
				r.seen = sum
				r.reload("the file changed")
			}
		}
	}
}

// reload loads the file and its credentials and hands them to the proxy.
func (r *reloader) reload(why string) {
	if b, err := os.ReadFile(r.path); err == nil {
		r.seen = sha256.Sum256(b)
	}
	refused := func(msg string, args ...any) {
		r.log.Error("reload refused: "+msg+"; the running configuration is unchanged", append([]any{"why", why, "config", r.srv.Version()}, args...)...)
	}
	cfg, err := loadProxyConfig(r.path, r.o)
	if err != nil {
		var probs *config.Problems
		if errors.As(err, &probs) {
			for _, line := range strings.Split(probs.Error(), "\n") {
				refused("the configuration has a problem", "problem", line)
			}
			return
		}
		refused("the configuration cannot be loaded", "err", err)
		return
	}
	creds, closeCreds, err := proxyCredentials(cfg, r.log)
	if err != nil {
		refused("the credentials cannot be loaded", "err", err)
		return
	}
	if err := r.srv.Reload(cfg, creds, closeCreds); err != nil {
		closeCreds()
		refused("the proxy cannot apply it", "err", err)
		return
	}
	r.log.Info("configuration reloaded; new requests are decided by it, open ones finish under the old", "why", why, "config", r.srv.Version(), "roles", len(cfg.Roles))
}
