package stepca

import (
	"errors"
	"fmt"
	"time"
)

// APIError is a refusal from step-ca: an HTTP status and its message. step-ca
// keeps the real reason in its own log and answers a generic sentence, so
// callers (package enroll) turn it into advice using what they know locally.
type APIError struct {
	Op      string    // "sign", "renew", "root", "provisioners"
	URL     string    // the request URL
	Status  int       // HTTP status
	Message string    // step-ca's "message" field, or the raw body
	Date    time.Time // the CA's Date header, to detect clock skew; zero if absent
}

func (e *APIError) Error() string {
	return fmt.Sprintf("step-ca %s at %s answered %d: %s", e.Op, e.URL, e.Status, e.Message)
}

// Temporary reports whether trying again later may help (the CA is starting,
// overloaded or behind a failing gateway).
func (e *APIError) Temporary() bool {
	return e.Status >= 500 || e.Status == 429
}

// UnreachableError means the request never got an HTTP answer: DNS, refused
// connection, timeout, TLS failure. Retrying may help.
type UnreachableError struct {
	URL string
	Err error
}

func (e *UnreachableError) Error() string {
	return fmt.Sprintf("step-ca at %s is unreachable: %v", e.URL, e.Err)
}

func (e *UnreachableError) Unwrap() error { return e.Err }

// HandshakeRefusedError means the CA rejected our TLS client certificate (for
// instance "tls: expired certificate" on /renew). Retrying cannot help.
type HandshakeRefusedError struct {
	URL string
	Err error
}

func (e *HandshakeRefusedError) Error() string {
	return fmt.Sprintf("step-ca at %s refused the TLS handshake: %v", e.URL, e.Err)
}

func (e *HandshakeRefusedError) Unwrap() error { return e.Err }

// Retryable reports whether err is worth retrying: the CA could not be reached
// or answered with a server-side error.
func Retryable(err error) bool {
	var u *UnreachableError
	if errors.As(err, &u) {
		return true
	}
	var a *APIError
	return errors.As(err, &a) && a.Temporary()
}
