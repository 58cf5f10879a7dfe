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

// explained is a CA refusal told as one sentence a user can act on. The
// CA's own answer (generic, "see the CA logs") stays reachable through
// Unwrap for callers and debugging, but is not repeated in the message.
type explained struct {
	msg string
	err error
}

func (e *explained) Error() string { return e.msg }
func (e *explained) Unwrap() error { return e.err }

func explain(err error, format string, args ...any) error {
	msg := fmt.Sprintf(format, args...)
	var apiErr *stepca.APIError
	var refused *stepca.HandshakeRefusedError
	switch {
	case errors.As(err, &apiErr):
		msg += fmt.Sprintf(" (step-ca answered %d to %s)", apiErr.Status, apiErr.URL)
	case errors.As(err, &refused):
		msg += fmt.Sprintf(" (%v)", refused.Err)
	}
	return &explained{msg: msg, err: err}
}

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
			direction := "ahead of"
			if skew < 0 {
				direction, skew = "behind", -skew
			}
			return explain(err, "step-ca refused the enrollment token for %q: the CA's clock (%s) is %s %s this machine's (%s), more than the minute tokens allow; fix the time (NTP) on one of them and retry with a new token", c.Subject, apiErr.Date.UTC().Format(time.RFC3339), skew.Round(time.Second), direction, now.UTC().Format(time.RFC3339))
		}
	}
	switch apiErr.Status {
	case http.StatusUnauthorized:
		return explain(err, "step-ca refused the enrollment token for %q: it was most likely already used (each token enrolls once), minted before the CA last restarted (step-ca refuses those), or not signed by the key of provisioner %q on this CA; mint a new one with `slapenir certs token %s` and set STEP_TOKEN", c.Subject, provisioner, c.Subject)
	case http.StatusForbidden:
		return explain(err, "step-ca's policy forbids a certificate for %q with names %v; ask the CA operator to allow them or mint a token with allowed names", c.Subject, c.SANs)
	case http.StatusBadRequest:
		return explain(err, "step-ca rejected the certificate request for %q as malformed (%s); check the token's subject and SANs and any --not-after lifetime against the provisioner's limits", c.Subject, apiErr.Message)
	}
	return err
}

// explainRenew turns a refusal of POST /renew into one actionable sentence.
func explainRenew(err error, subject string) error {
	var refused *stepca.HandshakeRefusedError
	if errors.As(err, &refused) {
		return explain(err, "step-ca rejected the certificate of %q during the TLS handshake (expired, or not issued by this CA); enroll again with a new token (`slapenir certs bootstrap --force`)", subject)
	}
	var apiErr *stepca.APIError
	if !errors.As(err, &apiErr) {
		return err
	}
	switch apiErr.Status {
	case http.StatusUnauthorized, http.StatusForbidden:
		return explain(err, "step-ca refused to renew the certificate of %q: it is expired, revoked, renewal is disabled for its provisioner, or it was issued by another CA; enroll again with a new token (`slapenir certs bootstrap --force`)", subject)
	}
	return err
}
