package proxy

import (
	"bytes"
	"cmp"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/http/httptrace"
	"net/textproto"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/slapenir/slapenir/internal/audit"
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

// DelaysStreams reports whether the vault holds a value whose shape lets
// the redactor keep back a line break at a flush, and how many bytes it may
// keep back: streamed answers then reach agents up to that late.
func (c *Credentials) DelaysStreams() (bool, int) {
	return c.red.HoldsLineBreaks(), c.red.Window() - 1
}

// active reports whether there is anything to inject or redact.
func (c *Credentials) active() bool { return c != nil && len(c.creds) > 0 }

// usage collects which credentials a request used, across the URL, headers
// and a body that is still streaming while the response comes back, and
// which placeholders were left alone, and why (leftProblems).
type usage struct {
	mu       sync.Mutex
	injected map[int]bool
	left     map[leftAlone]bool
	// bodyDone, set when a body streams through the injector, is closed
	// when that goroutine has finished, so the record names what it
	// injected. Set and read on the handler's goroutine.
	bodyDone chan struct{}
}

// leftAlone is a placeholder of credential i forwarded unchanged, the
// problem that kept it from being injected, and for placeholder_location
// the location it was found in.
type leftAlone struct {
	i       int
	problem string
	loc     secrets.Location
}

// The reasons a placeholder is left alone, in the order they are checked
// (and listed in the record): the destination is not one of the
// credential's hosts; it is, but the connection to it is plain http and the
// credential does not allow that; the agent's role may not use the
// credential; the placeholder is in a location the credential is not
// injected into. plan records which applies to each credential; the proxy and
// Explain read it there.
const (
	problemForeignHost = "placeholder_foreign_host"
	problemCleartext   = "placeholder_cleartext"
	problemNotGranted  = "placeholder_not_granted"
	problemLocation    = "placeholder_location"
)

var leftProblems = []string{problemForeignHost, problemCleartext, problemNotGranted, problemLocation}

// add notes what one location's replacement did; why says what kept each
// placeholder it left alone from being injected.
func (u *usage) add(used inject.Used, why func(int) string, loc secrets.Location) {
	u.mu.Lock()
	defer u.mu.Unlock()
	for _, i := range used.Injected {
		if u.injected == nil {
			u.injected = map[int]bool{}
		}
		u.injected[i] = true
	}
	for _, i := range used.Foreign {
		if u.left == nil {
			u.left = map[leftAlone]bool{}
		}
		note := leftAlone{i: i, problem: why(i)}
		if note.problem == problemLocation {
			note.loc = loc
		}
		u.left[note] = true
	}
}

// bodyWait bounds how long the record waits for a streamed body's injector
// after the response ended: the transport closes the body when it is done
// with it, which ends the injector at once.
const bodyWait = 2 * time.Second

// notes returns, once the body's injector is done (or bodyWait passed), the
// credentials injected and the placeholders left alone, for the record.
func (u *usage) notes(v *secrets.Vault) (injected []string, left []audit.PlaceholderNote) {
	if u.bodyDone != nil {
		t := time.NewTimer(bodyWait)
		select {
		case <-u.bodyDone:
		case <-t.C:
		}
		t.Stop()
	}
	u.mu.Lock()
	defer u.mu.Unlock()
	injected = v.Names(slices.Sorted(maps.Keys(u.injected)))
	notes := slices.SortedFunc(maps.Keys(u.left), func(a, b leftAlone) int {
		return cmp.Or(slices.Index(leftProblems, a.problem)-slices.Index(leftProblems, b.problem), a.i-b.i,
			slices.Index(secrets.Locations, a.loc)-slices.Index(secrets.Locations, b.loc))
	})
	for _, n := range notes {
		left = append(left, audit.PlaceholderNote{Credential: v.Names([]int{n.i})[0], Problem: n.problem, Location: string(n.loc)})
	}
	return injected, left
}

// injectRequest swaps placeholders in out's URL, headers and body as plan
// p says: only for the credentials whose placeholders it injects (for
// their hosts, over TLS unless they allow plain http, granted to the
// agent's role), each only in the locations its credential names.
func (c *Credentials) injectRequest(out *http.Request, p *plan, u *usage) {
	in := func(loc secrets.Location) func(int) bool {
		return func(i int) bool { return i >= 0 && i < len(p.creds) && p.injects(i) && c.creds[i].InjectsIn(loc) }
	}
	why := func(i int) string { return p.creds[i] }
	replacer := func(loc secrets.Location) func(string) string {
		allow := in(loc)
		return func(s string) string {
			r, used := c.inj.ReplaceString(s, allow)
			if len(used.Injected)+len(used.Foreign) > 0 {
				u.add(used, why, loc)
			}
			return r
		}
	}
	inPath, inHeader := replacer(secrets.InPath), replacer(secrets.InHeader)
	out.URL.Path = inPath(out.URL.Path)
	if out.URL.RawPath != "" {
		out.URL.RawPath = inPath(out.URL.RawPath)
	}
	out.URL.RawQuery = injectQuery(out.URL.RawQuery, replacer(secrets.InQuery))
	headerAllow := in(secrets.InHeader)
	for name, vals := range out.Header {
		for i, v := range vals {
			if strings.EqualFold(name, "Authorization") || strings.EqualFold(name, "Proxy-Authorization") {
				if nv, used := c.inj.Basic(v, headerAllow); len(used.Injected)+len(used.Foreign) > 0 {
					u.add(used, why, secrets.InHeader)
					vals[i] = nv
					continue
				}
			}
			vals[i] = inHeader(v)
		}
	}
	if out.Body == nil || out.Body == http.NoBody {
		return
	}
	c.injectBody(out, in(secrets.InBody), why, u)
}

// injectBody swaps placeholders in out's body for the credentials
// bodyAllow allows: a small body of known length whole, a larger one as it
// streams. Either way every placeholder in it is audited (why says what
// kept each one left alone from being injected).
func (c *Credentials) injectBody(out *http.Request, bodyAllow func(int) bool, why func(int) string, u *usage) {
	anyAllowed := false
	for i := range c.creds {
		if bodyAllow(i) {
			anyAllowed = true
			break
		}
	}
	if anyAllowed && out.ContentLength >= 0 && out.ContentLength <= smallBody {
		// A value need not be as long as its placeholder. A small body of
		// known length is replaced whole so it keeps an exact
		// Content-Length: some servers (git http-backend behind CGI) refuse
		// chunked requests.
		var b []byte
		var err error
		if held, ok := out.Body.(heldBody); ok && held.Len() == len(held.b) {
			b = held.b // read whole already (dlp): no second copy
		} else {
			b, err = io.ReadAll(io.LimitReader(out.Body, smallBody+1))
			out.Body.Close()
		}
		if err == nil {
			b, used := c.inj.Replace(b, bodyAllow)
			u.add(used, why, secrets.InBody)
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
	// Otherwise the body still streams through the injector, which then
	// replaces nothing, so that placeholders in it are audited.
	body := out.Body
	pr, pw := io.Pipe()
	done := make(chan struct{})
	u.bodyDone = done
	go func() {
		defer close(done)
		// A panic here would kill the whole proxy: no handler recovers a
		// goroutine of its own. Contain it to this request's body.
		defer func() {
			if p := recover(); p != nil {
				body.Close()
				pw.CloseWithError(fmt.Errorf("proxy: internal error while injecting credentials into the request body"))
			}
		}()
		w := c.inj.NewWriter(pw, bodyAllow)
		_, err := io.Copy(w, body)
		if cerr := w.Close(); err == nil {
			err = cerr
		}
		u.add(w.Used(), why, secrets.InBody)
		body.Close()
		pw.CloseWithError(err)
	}()
	out.Body = pr
}

// leftProblem says why a placeholder of c sent to host:port (over TLS or
// not) by an agent granted c or not was left alone: the first of
// leftProblems that applies.
func leftProblem(c secrets.Credential, host string, port int, tls, granted bool) string {
	switch {
	case !c.Matches(host, port):
		return problemForeignHost
	case !c.MayInject(host, port, tls):
		return problemCleartext
	case !granted:
		return problemNotGranted
	}
	return problemLocation
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

// redactResponse scrubs every real value from resp: header names and
// values, the body, and the trailers that arrive after it (1xx responses are
// scrubbed by scrub1xx, the status line's reason phrase is never passed on:
// net/http writes its own). The body is decompressed first when the upstream
// compressed it anyway; an encoding the proxy cannot read is refused rather
// than passed unscanned, and decoding is bounded (see decode.go) by budget.
func (c *Credentials) redactResponse(resp *http.Response, x *exchange, budget *decodeBudget) error {
	x.redactions.Add(int64(c.redactHeader(resp.Header)))
	// Announced trailer names go out in the Trailer header before the body.
	x.redactions.Add(int64(c.redactHeader(resp.Trailer)))
	if wholeBody(resp) {
		return c.redactWhole(resp, x)
	}
	decoded, err := decodedBody(resp, budget, x)
	if err != nil {
		return err
	}
	var body io.Reader = resp.Body
	if decoded != nil {
		body = decoded
	}
	rd := c.red.NewReader(body)
	x.bodyRedactor = rd
	resp.Body = &trailerScrubber{Reader: rd, rd: rd, decoded: decoded, body: resp.Body, resp: resp, c: c, x: x}
	if resp.ContentLength >= 0 && !isStream(resp.Header) {
		// The upstream sent a body of known length, not a stream: it goes
		// out in full buffers, not flushed write by write as ReverseProxy
		// flushes every body of unknown length — which redaction makes it.
		x.w.flushOff = true
	}
	// Redaction changes lengths.
	resp.ContentLength = -1
	resp.Header.Del("Content-Length")
	return nil
}

// wholeBody says whether resp's body is redacted in one piece, so that it
// keeps an exact Content-Length: a small body of known length, not
// compressed, not a stream, and not the bodiless answer to a HEAD or a
// 204/304.
func wholeBody(resp *http.Response) bool {
	return resp.ContentLength >= 0 && resp.ContentLength <= smallBody &&
		len(resp.Header.Values("Content-Encoding")) == 0 && !isStream(resp.Header) &&
		resp.Request.Method != http.MethodHead &&
		resp.StatusCode != http.StatusNoContent && resp.StatusCode != http.StatusNotModified
}

// redactWhole reads resp's small body (wholeBody) and replaces it with its
// redacted form and that form's length. A body cut short is an upstream
// error, answered as one, rather than passed on truncated.
func (c *Credentials) redactWhole(resp *http.Response, x *exchange) error {
	// One byte more than announced, so the read sees the body's end and
	// the transport can reuse the connection.
	var whole *[]byte
	var b []byte
	if resp.ContentLength < smallPooled {
		// A pooled 64 KiB buffer (the pool is emptied by every GC) would
		// cost more than a small one of the right size.
		b = make([]byte, resp.ContentLength+1)
	} else {
		whole = wholePool.Get().(*[]byte)
		b = (*whole)[:resp.ContentLength+1]
	}
	n, err := io.ReadFull(resp.Body, b)
	if int64(n) != resp.ContentLength || err != io.ErrUnexpectedEOF && err != io.EOF {
		if whole != nil {
			wholePool.Put(whole)
		}
		if err == nil || err == io.EOF || err == io.ErrUnexpectedEOF {
			err = fmt.Errorf("the upstream's body ended after %d of the %d bytes it announced", n, resp.ContentLength)
		}
		return fmt.Errorf("proxy: reading the upstream's response: %w", err)
	}
	out, k := c.red.Redact(b[:n])
	x.redactions.Add(int64(k))
	resp.Body = &trailerScrubber{Reader: bytes.NewReader(out), whole: whole, body: resp.Body, resp: resp, c: c, x: x}
	resp.ContentLength = int64(len(out))
	resp.Header.Set("Content-Length", strconv.Itoa(len(out)))
	return nil
}

// smallPooled is the smallest body read into a wholePool buffer.
const smallPooled = 8 << 10

// wholePool keeps redactWhole's buffers: a fresh 64 KiB per response was
// garbage the collector then spent a tenth of the time on.
var wholePool = sync.Pool{New: func() any { b := make([]byte, smallBody+1); return &b }}

// isStream says whether h announces a streaming content type, whose every
// write must reach the agent at once whatever the framing.
func isStream(h http.Header) bool {
	ct, _, _ := strings.Cut(h.Get("Content-Type"), ";")
	switch strings.ToLower(strings.TrimSpace(ct)) {
	case "text/event-stream", "application/x-ndjson", "application/ndjson", "application/jsonl",
		"application/json-seq", "application/stream+json", "multipart/x-mixed-replace":
		return true
	}
	return false
}

// trailerScrubber scrubs resp.Trailer when the body is closed: the transport
// fills the trailers in when it reads the body's end, and ReverseProxy
// closes the body before it copies them to the client. It then gives the
// body's buffers back for reuse: its redact.Reader (rd) or redactWhole's
// buffer (whole), whichever it has, and its decoders' memory (decoded).
type trailerScrubber struct {
	io.Reader
	rd      *redact.Reader
	whole   *[]byte // redactWhole's buffer, for wholePool
	decoded *decodedReader
	body    io.Closer
	resp    *http.Response
	c       *Credentials
	x       *exchange
	once    sync.Once
}

func (t *trailerScrubber) Close() error {
	err := t.body.Close()
	t.once.Do(func() {
		t.x.redactions.Add(int64(t.c.redactHeader(t.resp.Trailer)))
		if t.rd != nil {
			t.rd.Close()
		}
		if t.whole != nil {
			wholePool.Put(t.whole)
		}
		if t.decoded != nil {
			t.decoded.Close()
		}
	})
	return err
}

// redactHeader scrubs a header block in place and returns how many secrets
// it removed. A value is scanned as it arrived and also with its spaces and
// tabs taken out, since net/http joins an obs-folded line (RFC 9112 §5.2)
// with a space, which would otherwise split a secret in two. A field whose
// name holds a secret is dropped: a name cannot carry "[REDACTED]".
func (c *Credentials) redactHeader(h http.Header) int {
	n := 0
	for name, vals := range h {
		if _, k := c.red.RedactString(name); k > 0 {
			delete(h, name)
			n += k
			continue
		}
		for i, v := range vals {
			vals[i], n = c.redactValue(v, n)
		}
	}
	return n
}

func (c *Credentials) redactValue(v string, n int) (string, int) {
	v, k := c.red.RedactString(v)
	n += k
	if !strings.ContainsAny(v, " \t") {
		return v, n
	}
	// One copy of the right size: a stack buffer would escape through the
	// redactor's scan anyway.
	squeezed := make([]byte, 0, len(v))
	for i := 0; i < len(v); i++ {
		if v[i] != ' ' && v[i] != '\t' {
			squeezed = append(squeezed, v[i])
		}
	}
	if b, k := c.red.Redact(squeezed); k > 0 {
		return string(b), n + k
	}
	return v, n
}

// scrub removes every real value from text that came from an upstream and
// is about to be shown to the agent or written to the audit log: error
// messages quote what the upstream sent (net/http's "malformed HTTP
// response" names the bad line).
func (c *Credentials) scrub(s string) string {
	if !c.active() {
		return s
	}
	s, _ = c.red.RedactString(s)
	return s
}

// scrub1xx wraps the upstream transport so that 1xx responses (103 Early
// Hints…) are scrubbed before ReverseProxy passes them on: ReverseProxy
// forwards them from a client trace hook of its own, and a hook added later,
// here, runs before it on the same header map.
type scrub1xx struct {
	next  http.RoundTripper
	creds *Credentials
}

func (t scrub1xx) RoundTrip(r *http.Request) (*http.Response, error) {
	x := exchangeFrom(r.Context())
	if !t.creds.active() || x == nil {
		return t.next.RoundTrip(r)
	}
	ctx := httptrace.WithClientTrace(r.Context(), &httptrace.ClientTrace{
		Got1xxResponse: func(_ int, h textproto.MIMEHeader) error {
			x.redactions.Add(int64(t.creds.redactHeader(http.Header(h))))
			return nil
		},
	})
	return t.next.RoundTrip(r.WithContext(ctx))
}
