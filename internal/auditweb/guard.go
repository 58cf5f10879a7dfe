package auditweb

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"

	"github.com/slapenir/slapenir/internal/hostport"
)

// The records are the secret: every request is checked, reads as much as
// writes, before anything of the page or its API is served.
//
//  1. Host must be a name the server listens on. A DNS-rebinding page in
//     the operator's browser is, to the browser, same-origin with this
//     server; only its Host (the attacker's name) tells it apart.
//  2. A browser request must come from the page itself (Sec-Fetch-Site,
//     Origin): another site, or another port on the same machine, gets
//     nothing even when the browser would attach the cookie.
//  3. The request must carry the run's token: in the cookie the token URL
//     sets, in an Authorization: Bearer header (scripts), or once in
//     ?token= (which sets the cookie and redirects to the URL without it,
//     so the token leaves the address bar and the history).
//
// /healthz answers after the first two checks only: it says nothing but
// "ok", and readiness probes have no token.

// tokenBytes is the size of a generated token: 256 bits, past guessing.
const tokenBytes = 32

// minTokenLen is the shortest token accepted from the operator (a token
// file): a short one could be guessed over the network.
const minTokenLen = 16

// NewToken returns a fresh random token, URL-safe.
func NewToken() string {
	b := make([]byte, tokenBytes)
	// crypto/rand.Read never fails on the systems Go supports (it panics
	// instead of returning a weak value).
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// ListenHosts are the Host names a server listening on addr answers to: the
// address's IP literal; with loopback, also localhost and the other
// loopback literal; with an unspecified address (0.0.0.0, ::), every
// address of the machine's interfaces and the loopback names. A name
// (a DNS name in front of it) must be added by the operator: any name not
// chosen by the operator could be one an attacker's DNS points here.
func ListenHosts(addr net.Addr) []string {
	tcp, ok := addr.(*net.TCPAddr)
	if !ok || tcp.IP == nil {
		return loopbackNames()
	}
	switch {
	case tcp.IP.IsLoopback():
		return append(loopbackNames(), tcp.IP.String())
	case tcp.IP.IsUnspecified():
		hosts := loopbackNames()
		if addrs, err := net.InterfaceAddrs(); err == nil {
			for _, a := range addrs {
				if n, ok := a.(*net.IPNet); ok {
					hosts = append(hosts, n.IP.String())
				}
			}
		}
		return hosts
	default:
		return []string{tcp.IP.String()}
	}
}

func loopbackNames() []string { return []string{"localhost", "127.0.0.1", "::1"} }

// guard is the access check in front of the page and its API.
type guard struct {
	hosts     map[string]bool // lower case, no trailing dot
	tokenHash [sha256.Size]byte
	next      http.Handler
}

func newGuard(hosts []string, token string, next http.Handler) *guard {
	g := &guard{hosts: map[string]bool{}, tokenHash: sha256.Sum256([]byte(token)), next: next}
	if len(hosts) == 0 {
		hosts = loopbackNames()
	}
	for _, h := range hosts {
		if c, ok := canonicalHost(h); ok {
			g.hosts[c] = true
		}
	}
	return g
}

// canonicalHost is a Host header's name as compared, as hostport.Parse
// normalises it: no port, no IPv6 brackets, lower case, no trailing dot
// (example.com. is example.com). ok is false for what is no host name.
func canonicalHost(s string) (host string, ok bool) {
	host, _, err := hostport.Parse(s, 80)
	return host, err == nil
}

func (g *guard) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	// Whatever is answered, the token URL is not sent on as a Referer, and
	// no other site may frame the page (clickjacking).
	w.Header().Set("Referrer-Policy", "no-referrer")
	w.Header().Set("Content-Security-Policy", "default-src 'self'; frame-ancestors 'none'")
	w.Header().Set("X-Frame-Options", "DENY")
	w.Header().Set("Cache-Control", "no-store")
	if h, ok := canonicalHost(r.Host); !ok || !g.hosts[h] {
		refuse(w, http.StatusForbidden, fmt.Sprintf("Host %q is not a name this server listens on: open it by its address, or start slapenir audit serve with --allow-host NAME", r.Host))
		return
	}
	if why := crossOrigin(r); why != "" {
		refuse(w, http.StatusForbidden, why)
		return
	}
	if r.URL.Path == "/healthz" {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = fmt.Fprintln(w, "ok")
		return
	}
	q := r.URL.Query()
	if q.Has("token") {
		if !g.valid(q.Get("token")) {
			refuse(w, http.StatusUnauthorized, "wrong token: open the URL slapenir audit serve printed")
			return
		}
		http.SetCookie(w, &http.Cookie{Name: cookieName(r), Value: q.Get("token"), Path: "/", HttpOnly: true, SameSite: http.SameSiteStrictMode})
		q.Del("token")
		http.Redirect(w, r, withoutToken(r.URL.EscapedPath(), q), http.StatusSeeOther)
		return
	}
	if !g.authorized(r) {
		refuse(w, http.StatusUnauthorized, "this page needs the token: open the URL slapenir audit serve printed (http://…/?token=…), or send Authorization: Bearer TOKEN")
		return
	}
	g.next.ServeHTTP(w, r)
}

// crossOrigin says why a browser request did not come from the page
// itself, or "" when it did (or came from no browser: curl sends neither
// header). Checked on every method, GET included: reading is the harm.
func crossOrigin(r *http.Request) string {
	switch site := r.Header.Get("Sec-Fetch-Site"); site {
	case "", "same-origin", "none": // none: typed, bookmarked, opened from a terminal
	default:
		return fmt.Sprintf("a request from another site (Sec-Fetch-Site: %s) is refused: the audit page answers only itself", site)
	}
	if o := r.Header.Get("Origin"); o != "" {
		u, err := url.Parse(o)
		if err != nil || u.Scheme != "http" || !strings.EqualFold(u.Host, r.Host) {
			return fmt.Sprintf("a request from origin %q is refused: the audit page answers only itself", o)
		}
	}
	return ""
}

// authorized: the cookie or a bearer header holds the token.
func (g *guard) authorized(r *http.Request) bool {
	if c, err := r.Cookie(cookieName(r)); err == nil && g.valid(c.Value) {
		return true
	}
	if bearer, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer "); ok && g.valid(bearer) {
		return true
	}
	return false
}

// valid compares hashes in constant time, so neither the token's bytes nor
// its length show in how long a wrong guess takes.
func (g *guard) valid(token string) bool {
	h := sha256.Sum256([]byte(token))
	return subtle.ConstantTimeCompare(h[:], g.tokenHash[:]) == 1
}

// cookieName carries the listening port: browsers send a host's cookies to
// every port of it, and two audit servers on one machine (two proxies)
// must not overwrite each other's.
func cookieName(r *http.Request) string {
	port := "0"
	if a, ok := r.Context().Value(http.LocalAddrContextKey).(net.Addr); ok {
		if _, p, err := net.SplitHostPort(a.String()); err == nil {
			port = p
		}
	}
	return "slapenir-audit-" + port
}

// withoutToken is where the token URL redirects: the same path and query
// less the token. Only a path on this server: leading slashes collapse so
// "//evil.example" cannot become a redirect to another host.
func withoutToken(path string, q url.Values) string {
	loc := "/" + strings.TrimLeft(path, "/\\")
	if len(q) > 0 {
		loc += "?" + q.Encode()
	}
	return loc
}

func refuse(w http.ResponseWriter, status int, why string) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_, _ = fmt.Fprintf(w, "slapenir audit serve: %s\n", why)
}
