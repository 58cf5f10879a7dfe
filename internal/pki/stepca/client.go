package stepca

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/slapenir/slapenir/internal/pki/certfile"
)

// Client talks to one step-ca, trusting only Root.
type Client struct {
	URL  string // e.g. https://ca:9000, no trailing slash
	Root *x509.Certificate
	pool *x509.CertPool
}

// New returns a client for caURL that verifies the CA's TLS certificate
// against root.
func New(caURL string, root *x509.Certificate) *Client {
	pool := x509.NewCertPool()
	pool.AddCert(root)
	return &Client{URL: strings.TrimRight(caURL, "/"), Root: root, pool: pool}
}

// requestTimeout bounds one API call; retries are the caller's business.
const requestTimeout = 15 * time.Second

// httpClient returns a client trusting c.Root and presenting cert, if any.
// Each call gets its own transport so a renewed client certificate is used on
// the next request and no connection with an old one is reused.
func (c *Client) httpClient(cert *tls.Certificate) *http.Client {
	cfg := &tls.Config{RootCAs: c.pool, MinVersion: tls.VersionTLS12}
	if cert != nil {
		cfg.Certificates = []tls.Certificate{*cert}
	}
	return &http.Client{
		Timeout: requestTimeout,
		// Proxy stays nil on purpose: inside the agent container HTTP_PROXY
		// points at the relay, and the CA must be reached directly.
		Transport: &http.Transport{TLSClientConfig: cfg, DisableKeepAlives: true},
	}
}

// signResponse is step-ca's answer to /sign and /renew.
type signResponse struct {
	Crt       string   `json:"crt"`
	CA        string   `json:"ca"`
	CertChain []string `json:"certChain"`
}

// Sign asks the CA for a certificate for csr, authorized by the one-time token
// ott. notAfter, when non-zero, asks for that lifetime instead of the
// provisioner's default. It returns the chain, leaf first.
func (c *Client) Sign(ctx context.Context, csr *x509.CertificateRequest, ott string, notAfter time.Duration) ([]*x509.Certificate, error) {
	body := map[string]any{
		"csr": string(pemCSR(csr)),
		"ott": ott,
	}
	if notAfter > 0 {
		body["notAfter"] = notAfter.String()
	}
	var resp signResponse
	if err := c.do(ctx, "sign", http.MethodPost, "/sign", body, nil, &resp); err != nil {
		return nil, err
	}
	return resp.chain(c.URL + "/sign")
}

// Renew asks the CA for a new certificate with the same names and lifetime as
// current, authenticated by presenting current over mTLS.
func (c *Client) Renew(ctx context.Context, current tls.Certificate) ([]*x509.Certificate, error) {
	var resp signResponse
	if err := c.do(ctx, "renew", http.MethodPost, "/renew", nil, &current, &resp); err != nil {
		return nil, err
	}
	return resp.chain(c.URL + "/renew")
}

func (r signResponse) chain(url string) ([]*x509.Certificate, error) {
	pems := r.CertChain
	if len(pems) == 0 {
		pems = []string{r.Crt, r.CA}
	}
	certs, err := certfile.ParseCerts([]byte(strings.Join(pems, "\n")))
	if err != nil {
		return nil, fmt.Errorf("stepca: %s returned no usable certificate: %w", url, err)
	}
	return certs, nil
}

// do sends one request and decodes a JSON answer with status want into out.
func (c *Client) do(ctx context.Context, op, method, path string, in any, cert *tls.Certificate, out any) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return fmt.Errorf("stepca: cannot encode %s request: %w", op, err)
		}
		body = bytes.NewReader(b)
	}
	url := c.URL + path
	req, err := http.NewRequestWithContext(ctx, method, url, body)
	if err != nil {
		return fmt.Errorf("stepca: invalid CA URL %q: %w (want e.g. https://ca:9000)", c.URL, err)
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.httpClient(cert).Do(req)
	// A TLS alert from the CA (crypto/tls reports it as a net.OpError with Op
	// "remote error") is a verdict on our certificate, not an outage.
	var opErr *net.OpError
	if err != nil && errors.As(err, &opErr) && opErr.Op == "remote error" {
		return &HandshakeRefusedError{URL: url, Err: err}
	}
	if err != nil {
		return &UnreachableError{URL: url, Err: err}
	}
	return decode(resp, op, url, out)
}

// decode reads resp as the JSON value out when its status is 2xx, and as an
// *APIError otherwise.
func decode(resp *http.Response, op, url string, out any) error {
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return &UnreachableError{URL: url, Err: fmt.Errorf("reading the answer: %w", err)}
	}
	// step-ca is not consistent about 200 versus 201 (GET /roots answers 201),
	// so any 2xx is success.
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		apiErr := &APIError{Op: op, URL: url, Status: resp.StatusCode, Message: strings.TrimSpace(string(data))}
		var e struct {
			Message string `json:"message"`
		}
		if json.Unmarshal(data, &e) == nil && e.Message != "" {
			apiErr.Message = e.Message
		}
		if d, err := http.ParseTime(resp.Header.Get("Date")); err == nil {
			apiErr.Date = d
		}
		return apiErr
	}
	if err := json.Unmarshal(data, out); err != nil {
		return fmt.Errorf("stepca: %s answered %d with invalid JSON: %w", url, resp.StatusCode, err)
	}
	return nil
}
