package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/slapenir/slapenir/internal/pki/certfile"
	"github.com/slapenir/slapenir/internal/pki/reload"
)

// certsBundle writes the one CA bundle the agent's tools trust
// (SSL_CERT_FILE, REQUESTS_CA_BUNDLE, GIT_SSL_CAINFO, …): the system's
// roots, for sites reached through blind tunnels; the CA the proxy's
// certificate chains to; and the proxy's interception CA (GET /ca.pem), for
// hosts the proxy terminates TLS to.
func certsBundle(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("certs bundle", flag.ContinueOnError)
	fs.SetOutput(stderr)
	dir := fs.String("dir", defaultCertsDir(), "the agent's certificate directory (cert.pem, key.pem, root_ca.pem; $SLAPENIR_CERTS_DIR when set)")
	out := fs.String("out", "", "the bundle to write (default DIR/ca-bundle.pem)")
	proxyURL := fs.String("proxy", certsEnv("SLAPENIR_PROXY_URL", "https://proxy:3000"), "the proxy, for its interception CA")
	timeout := fs.Duration("timeout", time.Minute, "how long to keep trying the proxy")
	if err := fs.Parse(args); err != nil || fs.NArg() != 0 {
		return 2
	}
	d := certfile.Dir(*dir)
	if *out == "" {
		*out = d.CABundle()
	}
	logf := certsLog("ca-bundle", stderr)
	system, from, err := certfile.SystemRoots()
	if err != nil {
		fmt.Fprintf(stderr, "[ca-bundle] %v\n", err)
		return 1
	}
	root, err := os.ReadFile(d.Root())
	if err != nil {
		fmt.Fprintf(stderr, "[ca-bundle] %v (enroll first: certs bootstrap)\n", err)
		return 1
	}
	intercept, err := fetchInterceptCA(d, *proxyURL, *timeout)
	if err != nil {
		fmt.Fprintf(stderr, "[ca-bundle] %v\n", err)
		return 1
	}
	if err := certfile.WriteAtomic(*out, certfile.JoinPEM(system, root, intercept), 0o644); err != nil {
		fmt.Fprintf(stderr, "[ca-bundle] %v\n", err)
		return 1
	}
	logf("wrote %s: the system roots (%s), the CA root %s and the proxy's interception CA", *out, from, d.Root())
	return 0
}

// fetchInterceptCA asks the proxy for /ca.pem (proxyGet).
func fetchInterceptCA(d certfile.Dir, proxyURL string, timeout time.Duration) ([]byte, error) {
	var pem []byte
	err := proxyGet(d, proxyURL, "/ca.pem", "the proxy's interception CA", timeout, func(b []byte) error {
		if !strings.Contains(string(b), "BEGIN CERTIFICATE") {
			return errors.New("the answer holds no certificate")
		}
		pem = b
		return nil
	})
	return pem, err
}

// proxyGet asks the proxy for one of its own pages (path) over mTLS with
// the agent's certificate in d, verifying the proxy against the agent's
// root, and keeps trying — the proxy may still be starting — until accept
// takes a 200 answer's body or timeout passes; what names the page in the
// error.
func proxyGet(d certfile.Dir, proxyURL, path, what string, timeout time.Duration, accept func([]byte) error) error {
	kp, err := reload.NewKeyPair(d.Cert(), d.Key())
	if err != nil {
		return fmt.Errorf("%v (enroll first: slapenir certs bootstrap)", err)
	}
	roots, err := reload.NewCAPool(d.Root())
	if err != nil {
		return err
	}
	u, err := url.Parse(proxyURL)
	if err != nil || u.Hostname() == "" {
		return fmt.Errorf("--proxy %q is not a URL with a host (want e.g. https://proxy:3000)", proxyURL)
	}
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{Proxy: nil, TLSClientConfig: reload.ClientConfig(kp, roots, u.Hostname())}}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	target := strings.TrimSuffix(proxyURL, "/") + path
	var last error
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, target, nil)
		resp, err := client.Do(req)
		if err == nil {
			b, rerr := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
			resp.Body.Close()
			switch {
			case rerr != nil:
				err = fmt.Errorf("GET %s: %v", target, rerr)
			case resp.StatusCode != http.StatusOK:
				err = fmt.Errorf("GET %s answered %s", target, resp.Status)
			default:
				if err = accept(b); err == nil {
					return nil
				}
				err = fmt.Errorf("GET %s: %v", target, err)
			}
		}
		last = err
		select {
		case <-ctx.Done():
			return fmt.Errorf("cannot get %s from the proxy within %s: %v", what, timeout, last)
		case <-time.After(time.Second):
		}
	}
}
