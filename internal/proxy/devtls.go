package proxy

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/slapenir/slapenir/internal/pki/certfile"
	"github.com/slapenir/slapenir/internal/pki/devca"
	"github.com/slapenir/slapenir/internal/pki/reload"
)

// DevTLS is the embedded default's mTLS, for a proxy run without a tls
// section: the development CA in stateDir (created on first use), and a
// server certificate from it for names, kept fresh in the background until
// ctx ends. Client certificates come from `slapenir certs dev-issue`.
func DevTLS(ctx context.Context, stateDir string, names []string, log *slog.Logger) (*TLSOptions, *devca.CA, error) {
	ca, err := devca.Ensure(stateDir)
	if err != nil {
		return nil, nil, err
	}
	dir := certfile.Dir(filepath.Join(stateDir, "proxy-tls"))
	ensure := func() error {
		_, err := ca.EnsureServerCert(dir, names, devca.DefaultServerLifetime, time.Now())
		return err
	}
	if err := ensure(); err != nil {
		return nil, nil, fmt.Errorf("proxy: cannot issue its development server certificate: %w", err)
	}
	kp, err := reload.NewKeyPair(dir.Cert(), dir.Key())
	if err != nil {
		return nil, nil, err
	}
	pool, err := reload.NewCAPool(ca.RootFile())
	if err != nil {
		return nil, nil, err
	}
	go func() {
		// EnsureServerCert reissues when a third of the lifetime is left;
		// checking hourly leaves hours of margin on a 24 h certificate.
		t := time.NewTicker(time.Hour)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				if err := ensure(); err != nil {
					log.Error("renewing the development server certificate failed; the current one stays in use", "err", err)
				}
			}
		}
	}()
	return &TLSOptions{KeyPair: kp, ClientCA: pool, AllowedIdentities: []string{"*"}}, ca, nil
}

// DevServerNames are the names the development server certificate is for:
// what agents on this machine or in a compose network call the proxy.
func DevServerNames() []string {
	names := []string{"localhost", "proxy", "127.0.0.1", "::1"}
	if h, err := os.Hostname(); err == nil && h != "" && h != "localhost" {
		names = append(names, h)
	}
	return names
}
