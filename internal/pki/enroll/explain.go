package enroll

import (
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/slapenir/slapenir/internal/pki/stepca"
	"github.com/slapenir/slapenir/internal/pki/token"
)

// maxSkew is the clock difference step-ca tolerates on token times.
const maxSkew = time.Minute

// explainSign turns a refusal of POST /sign into one actionable sentence.
// step-ca answers every token problem with the same generic 401 and logs the
// reason on its side, so we rule out what we can check here (expiry,
// provisioner and clock were checked before sending) and name what remains.
func explainSign(err error, c token.Claims, provisioner string, now time.Time) error {
	var apiErr *stepca.APIError
	if !errors.As(err, &apiErr) {
		return err
	}
	if !apiErr.Date.IsZero() {
		if skew := apiErr.Date.Sub(now); skew > maxSkew || skew < -maxSkew {
			return fmt.Errorf("step-ca refused the enrollment token for %q: the CA's clock (%s) and this machine's (%s) differ by %s, more than the minute tokens allow; fix the time (NTP) on one of them and retry with a new token: %w",
				c.Subject, apiErr.Date.UTC().Format(time.RFC3339), now.UTC().Format(time.RFC3339), skew.Round(time.Second), err)
		}
	}
	switch apiErr.Status {
	case http.StatusUnauthorized:
		return fmt.Errorf("step-ca refused the enrollment token for %q: it was most likely already used (each token enrolls once), minted before the CA last restarted (step-ca refuses those), or not signed by the key of provisioner %q on this CA; mint a new one with `slapenir certs token %s` and set STEP_TOKEN: %w", c.Subject, provisioner, c.Subject, err)
	case http.StatusForbidden:
		return fmt.Errorf("step-ca's policy forbids a certificate for %q with names %v; ask the CA operator to allow them or mint a token with allowed names: %w", c.Subject, c.SANs, err)
	case http.StatusBadRequest:
		return fmt.Errorf("step-ca rejected the certificate request for %q as malformed (%s); check the token's subject and SANs and any --not-after lifetime against the provisioner's limits: %w", c.Subject, apiErr.Message, err)
	}
	return err
}

// explainRenew turns a refusal of POST /renew into one actionable sentence.
func explainRenew(err error, subject string) error {
	var refused *stepca.HandshakeRefusedError
	if errors.As(err, &refused) {
		return fmt.Errorf("step-ca rejected the certificate of %q during the TLS handshake (expired, or not issued by this CA); enroll again with a new token (`slapenir certs bootstrap --force`): %w", subject, err)
	}
	var apiErr *stepca.APIError
	if !errors.As(err, &apiErr) {
		return err
	}
	switch apiErr.Status {
	case http.StatusUnauthorized, http.StatusForbidden:
		return fmt.Errorf("step-ca refused to renew the certificate of %q: it is expired, revoked, renewal is disabled for its provisioner, or it was issued by another CA; enroll again with a new token (`slapenir certs bootstrap --force`): %w", subject, err)
	}
	return err
}
