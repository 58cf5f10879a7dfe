package up

import (
	"context"
	"crypto/x509"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/slapenir/slapenir/internal/config"
	"github.com/slapenir/slapenir/internal/pki/certfile"
	"github.com/slapenir/slapenir/internal/pki/devca"
	"github.com/slapenir/slapenir/internal/pki/enroll"
	"github.com/slapenir/slapenir/internal/pki/stepca"
	"github.com/slapenir/slapenir/internal/pki/token"
)

// devCAAgentCert issues the agent's certificate from the development CA the
// proxy serves with: there is no step-ca to enroll with, so there is no
// one-time token either. It returns the CA's root file.
func devCAAgentCert(stateDir, agentName string, agentCerts certfile.Dir) (string, error) {
	ca, err := devca.Ensure(stateDir)
	if err != nil {
		return "", err
	}
	if _, err := ca.IssueTo(agentCerts, devca.Request{CommonName: agentName, Usage: devca.Client}); err != nil {
		return "", fmt.Errorf("up: cannot issue the agent's certificate from the development CA: %w", err)
	}
	return ca.RootFile(), nil
}

// stepCA is the step-ca up enrolls the proxy with and mints the agent's
// one-time token from.
type stepCA struct {
	StepCA
	root     *x509.Certificate
	rootFile string
	sha      string
}

// trustStepCA reads or fetches the CA's root, pinned by the file or the
// fingerprint, and writes it into the state directory.
func trustStepCA(ctx context.Context, c StepCA, stateDir string) (*stepCA, error) {
	var root *x509.Certificate
	if c.Root != "" {
		roots, err := certfile.ReadCerts(c.Root)
		if err != nil {
			return nil, err
		}
		root = roots[0]
	} else {
		var err error
		if root, err = stepca.FetchRoot(ctx, c.URL, c.Fingerprint, false); err != nil {
			return nil, err
		}
	}
	rootFile := filepath.Join(stateDir, "step-ca-root.pem")
	if err := certfile.WriteAtomic(rootFile, certfile.EncodeCerts(root), 0o644); err != nil {
		return nil, err
	}
	return &stepCA{StepCA: c, root: root, rootFile: rootFile, sha: certfile.Fingerprint(root)}, nil
}

// mint makes a one-time token for subject, for a CA reached at audienceURL
// (the agent may reach the CA under another name than up does).
func (s *stepCA) mint(ctx context.Context, audienceURL, subject string, sans []string) (string, error) {
	password, err := os.ReadFile(s.PasswordFile)
	if err != nil {
		return "", fmt.Errorf("up: cannot read the provisioner password file: %w", err)
	}
	provs, err := stepca.New(s.URL, s.root).Provisioners(ctx)
	if err != nil {
		return "", err
	}
	return token.MintFrom(provs, password, token.Request{Provisioner: s.Provisioner, CAURL: audienceURL, Subject: subject, SANs: sans, RootSHA: s.sha})
}

// proxyTLS enrolls the proxy's server certificate for names with the CA and
// keeps it renewed until ctx ends (the proxy re-reads it on the next
// handshake); clients must chain to the CA's root.
func (s *stepCA) proxyTLS(ctx context.Context, stateDir string, names []string, log func(string, ...any)) (*config.TLS, error) {
	tok, err := s.mint(ctx, s.URL, names[0], names)
	if err != nil {
		return nil, fmt.Errorf("up: minting the proxy's token: %w", err)
	}
	dir := certfile.Dir(filepath.Join(stateDir, "proxy-tls"))
	b := enroll.Bootstrap{CAURL: s.URL, Token: tok, Provisioner: s.Provisioner, Fingerprint: s.sha,
		Dir: dir, Timeout: 30 * time.Second, Force: true, Logf: log}
	if _, err := b.Run(ctx); err != nil {
		return nil, fmt.Errorf("up: enrolling the proxy's certificate: %w", err)
	}
	r := &enroll.Renewer{CAURL: s.URL, Dir: dir, Logf: log}
	go func() {
		if err := r.Run(ctx, nil); err != nil && ctx.Err() == nil {
			log("renewing the proxy's certificate stopped: %v", err)
		}
	}()
	return &config.TLS{Cert: dir.Cert(), Key: dir.Key(), ClientCA: s.rootFile}, nil
}
