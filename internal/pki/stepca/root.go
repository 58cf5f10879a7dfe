package stepca

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/slapenir/slapenir/internal/pki/certfile"
)

// ErrFingerprintMismatch means the CA served a root other than the pinned one.
var ErrFingerprintMismatch = errors.New("root fingerprint mismatch")

// FetchRoot downloads the CA's root and establishes trust in it. With a
// fingerprint (hex SHA-256, from STEP_FINGERPRINT or the token's sha claim) the
// root must hash to it and the CA's own TLS chain must verify against it. With
// an empty fingerprint, only insecure is allowed: the first root the CA lists
// is taken on faith (trust on first use).
//
// The download itself runs without TLS verification because the root is what
// we do not have yet; nothing secret is sent on that connection.
func FetchRoot(ctx context.Context, caURL, fingerprint string, insecure bool) (*x509.Certificate, error) {
	caURL = strings.TrimRight(caURL, "/")
	fingerprint = normalizeFingerprint(fingerprint)
	client := &http.Client{
		Timeout:   requestTimeout,
		Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}, DisableKeepAlives: true}, //nolint:gosec // trust is established below by fingerprint.
	}
	var url string
	if fingerprint != "" {
		url = caURL + "/root/" + fingerprint
	} else if insecure {
		url = caURL + "/roots"
	} else {
		return nil, fmt.Errorf("stepca: no root fingerprint to trust %s: set STEP_FINGERPRINT, use a token with a sha claim, or pass --insecure to trust whatever root the CA serves", caURL)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, fmt.Errorf("stepca: invalid CA URL %q: %w (want e.g. https://ca:9000)", caURL, err)
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, &UnreachableError{URL: url, Err: err}
	}
	var body struct {
		CA   string   `json:"ca"`
		Crts []string `json:"crts"`
	}
	if err := decode(resp, "root", url, &body); err != nil {
		var apiErr *APIError
		if fingerprint != "" && errors.As(err, &apiErr) && apiErr.Status == http.StatusNotFound {
			return nil, fmt.Errorf("stepca: %w: the CA at %s has no root with fingerprint %s; check STEP_FINGERPRINT (`step certificate fingerprint root_ca.crt` on the CA prints it)", ErrFingerprintMismatch, caURL, fingerprint)
		}
		return nil, err
	}
	pemText := body.CA
	if pemText == "" && len(body.Crts) > 0 {
		pemText = body.Crts[0]
	}
	certs, err := certfile.ParseCerts([]byte(pemText))
	if err != nil {
		return nil, fmt.Errorf("stepca: %s returned no root certificate: %w", url, err)
	}
	root := certs[0]
	if got := certfile.Fingerprint(root); fingerprint != "" && got != fingerprint {
		return nil, fmt.Errorf("stepca: %w: %s served a root with fingerprint %s, expected %s; the CA URL or STEP_FINGERPRINT is wrong (or someone is in the middle)", ErrFingerprintMismatch, caURL, got, fingerprint)
	}
	if err := verifyServer(resp.TLS, root); err != nil {
		return nil, fmt.Errorf("stepca: %s: %w", caURL, err)
	}
	return root, nil
}

// verifyServer checks that the TLS connection the root came over was served
// by a certificate of that root, so a pinned root also authenticates the CA.
func verifyServer(state *tls.ConnectionState, root *x509.Certificate) error {
	if state == nil || len(state.PeerCertificates) == 0 {
		return fmt.Errorf("the CA did not serve a TLS certificate (is STEP_CA_URL https?)")
	}
	pool := x509.NewCertPool()
	pool.AddCert(root)
	inter := x509.NewCertPool()
	for _, c := range state.PeerCertificates[1:] {
		inter.AddCert(c)
	}
	_, err := state.PeerCertificates[0].Verify(x509.VerifyOptions{Roots: pool, Intermediates: inter})
	if err != nil {
		return fmt.Errorf("the CA's TLS certificate does not chain to the root it served: %w", err)
	}
	return nil
}

func normalizeFingerprint(fp string) string {
	return strings.ToLower(strings.ReplaceAll(strings.TrimSpace(fp), ":", ""))
}
