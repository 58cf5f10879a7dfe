package proxy

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"sync"

	"github.com/slapenir/slapenir/internal/inject"
	"github.com/slapenir/slapenir/internal/redact"
	"github.com/slapenir/slapenir/internal/secrets"
)

// Credentials is the zero-knowledge stage: on the way out, placeholders
// become real values, only for the hosts each credential belongs to; on the
// way back, every real value is redacted from headers and bodies in every
// encoding. The agent never holds a real key.
type Credentials struct {
	vault *secrets.Vault
	inj   *inject.Injector
	red   *redact.Redactor
	// creds is the vault's list, read once: it never changes while the
	// proxy runs, and the vault hands out copies.
	creds []secrets.Credential
}

// NewCredentials compiles the vault's values into the injector and the
// redactor (see package secrets for where copies live).
func NewCredentials(v *secrets.Vault) (*Credentials, error) {
	inj, err := v.NewInjector()
	if err != nil {
		return nil, fmt.Errorf("proxy: credentials: %w", err)
	}
	red, err := v.NewRedactor(redact.Options{})
	if err != nil {
		return nil, fmt.Errorf("proxy: credentials: %w", err)
	}
	return &Credentials{vault: v, inj: inj, red: red, creds: v.Credentials()}, nil
}

// active reports whether there is anything to inject or redact.
func (c *Credentials) active() bool { return c != nil && len(c.creds) > 0 }

// needsInterception says whether a CONNECT to host:port must be terminated
// so a credential can be injected.
func (c *Credentials) needsInterception(host string, port int) bool {
	if !c.active() {
		return false
	}
	for _, cr := range c.creds {
		if cr.Matches(host, port) {
			return true
		}
	}
	return false
}

// usage collects which credentials a request used, across the URL, headers
// and a body that is still streaming while the response comes back.
type usage struct {
	mu       sync.Mutex
	injected map[int]bool
	foreign  map[int]bool
}

func (u *usage) add(used inject.Used) {
	u.mu.Lock()
	defer u.mu.Unlock()
	for _, i := range used.Injected {
		if u.injected == nil {
			u.injected = map[int]bool{}
		}
		u.injected[i] = true
	}
	for _, i := range used.Foreign {
		if u.foreign == nil {
			u.foreign = map[int]bool{}
		}
		u.foreign[i] = true
	}
}

func keys(m map[int]bool) []int {
	out := make([]int, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Ints(out)
	return out
}

// injectRequest swaps placeholders in out's URL, headers and body for the
// destination host:port (the target URL or CONNECT authority, never an
// inner Host header).
func (c *Credentials) injectRequest(out *http.Request, host string, port int, u *usage) {
	allow := c.vault.Allow(host, port)
	replace := func(s string) string {
		b, used := c.inj.Replace([]byte(s), allow)
		u.add(used)
		return string(b)
	}
	out.URL.Path = replace(out.URL.Path)
	if out.URL.RawPath != "" {
		out.URL.RawPath = replace(out.URL.RawPath)
	}
	out.URL.RawQuery = injectQuery(out.URL.RawQuery, replace)
	for name, vals := range out.Header {
		for i, v := range vals {
			if strings.EqualFold(name, "Authorization") || strings.EqualFold(name, "Proxy-Authorization") {
				if nv, used := c.inj.Basic(v, allow); len(used.Injected)+len(used.Foreign) > 0 {
					u.add(used)
					vals[i] = nv
					continue
				}
			}
			vals[i] = replace(v)
		}
	}
	if out.Body == nil || out.Body == http.NoBody {
		return
	}
	anyAllowed := false
	for i := range c.creds {
		if allow(i) {
			anyAllowed = true
			break
		}
	}
	if anyAllowed && out.ContentLength >= 0 && out.ContentLength <= smallBody {
		// A value need not be as long as its placeholder. A small body of
		// known length is replaced whole so it keeps an exact
		// Content-Length: some servers (git http-backend behind CGI) refuse
		// chunked requests.
		b, err := io.ReadAll(io.LimitReader(out.Body, smallBody+1))
		out.Body.Close()
		if err == nil {
			b, used := c.inj.Replace(b, allow)
			u.add(used)
			out.Body = io.NopCloser(bytes.NewReader(b))
			out.ContentLength = int64(len(b))
			out.Header.Set("Content-Length", strconv.Itoa(len(b)))
			return
		}
		out.Body = io.NopCloser(errReader{err})
		return
	}
	if anyAllowed {
		// A larger body streams, and its length is unknown until the end.
		out.ContentLength = -1
		out.Header.Del("Content-Length")
	}
	body := out.Body
	pr, pw := io.Pipe()
	go func() {
		w := c.inj.NewWriter(pw, allow)
		_, err := io.Copy(w, body)
		if cerr := w.Close(); err == nil {
			err = cerr
		}
		u.add(w.Used())
		body.Close()
		pw.CloseWithError(err)
	}()
	out.Body = pr
}

// smallBody is the largest request body replaced whole rather than streamed.
const smallBody = 64 << 10

type errReader struct{ err error }

func (e errReader) Read([]byte) (int, error) { return 0, e.err }

// injectQuery replaces placeholders in query values, which may arrive
// percent-encoded.
func injectQuery(raw string, replace func(string) string) string {
	if raw == "" {
		return raw
	}
	parts := strings.Split(raw, "&")
	for i, p := range parts {
		if dec, err := url.QueryUnescape(p); err == nil && dec != p {
			if r := replace(dec); r != dec {
				k, v, _ := strings.Cut(r, "=")
				parts[i] = url.QueryEscape(k) + "=" + url.QueryEscape(v)
				continue
			}
		}
		parts[i] = replace(p)
	}
	return strings.Join(parts, "&")
}

// redactResponse scrubs every real value from resp's headers and body. The
// body is decompressed first when the upstream compressed it anyway; an
// encoding the proxy cannot read is refused rather than passed unscanned.
func (c *Credentials) redactResponse(resp *http.Response, x *exchange) error {
	for _, vals := range resp.Header {
		for i, v := range vals {
			if b, n := c.red.Redact([]byte(v)); n > 0 {
				vals[i] = string(b)
				x.redactions.Add(int64(n))
			}
		}
	}
	body, err := decodedBody(resp)
	if err != nil {
		return err
	}
	rd := c.red.NewReader(body)
	x.bodyRedactor = rd
	resp.Body = readCloser{Reader: rd, Closer: resp.Body}
	// Redaction changes lengths.
	resp.ContentLength = -1
	resp.Header.Del("Content-Length")
	return nil
}

type readCloser struct {
	io.Reader
	io.Closer
}
