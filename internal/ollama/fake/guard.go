package fake

import (
	"net"
	"net/http"
	"net/netip"
	"os"
	"strings"
)

// The two rules below copy Ollama 0.17.4 (server/routes.go: the CORS
// middleware from gin-contrib/cors, then allowedHostsMiddleware), in that
// order. A relay that adds an Origin header, or forwards a Host Ollama does
// not accept, gets the same bare 403 from the fake as from Ollama.

// defaultOrigins are the origins Ollama always allows (envconfig.AllowedOrigins).
var defaultOrigins = func() []string {
	var origins []string
	for _, host := range []string{"localhost", "127.0.0.1", "0.0.0.0"} {
		origins = append(origins,
			"http://"+host, "https://"+host,
			"http://"+host+":*", "https://"+host+":*")
	}
	return append(origins, "app://*", "file://*", "tauri://*", "vscode-webview://*", "vscode-file://*")
}()

// allowOrigin answers 403 to a cross-origin request from an origin that is
// not allowed, and 204 to an allowed CORS preflight. It reports whether the
// request goes on.
func (s *Server) allowOrigin(w http.ResponseWriter, r *http.Request) bool {
	origin := r.Header.Get("Origin")
	if origin == "" || origin == "http://"+r.Host || origin == "https://"+r.Host {
		return true
	}
	if !originAllowed(origin, append(s.opts.AllowedOrigins, defaultOrigins...)) {
		w.WriteHeader(http.StatusForbidden)
		return false
	}
	w.Header().Set("Access-Control-Allow-Origin", origin)
	w.Header().Add("Vary", "Origin")
	if r.Method == http.MethodOptions {
		w.Header().Set("Access-Control-Allow-Methods", "GET,POST,PUT,PATCH,DELETE,HEAD,OPTIONS")
		w.WriteHeader(http.StatusNoContent)
		return false
	}
	return true
}

// originAllowed matches origin against allowed entries the way gin-contrib/cors
// does: entries compare lower-cased, "*" allows all, and one "*" in an entry
// stands for any text between its prefix and suffix.
func originAllowed(origin string, allowed []string) bool {
	for _, a := range allowed {
		a = strings.ToLower(strings.TrimSpace(a))
		if a == "*" || a == origin {
			return true
		}
		prefix, suffix, wild := strings.Cut(a, "*")
		if wild && strings.HasPrefix(origin, prefix) && strings.HasSuffix(origin, suffix) {
			return true
		}
	}
	return false
}

// allowHost applies Ollama's DNS-rebinding guard: when it listens on a
// loopback address, only Hosts that name this machine or a private network
// are served; others get 403. It reports whether the request goes on.
func (s *Server) allowHost(w http.ResponseWriter, r *http.Request) bool {
	addr := s.opts.ListenAddr
	if addr == nil {
		return true
	}
	if ap, err := netip.ParseAddrPort(addr.String()); err == nil && !ap.Addr().IsLoopback() {
		return true
	}
	host, _, err := net.SplitHostPort(r.Host)
	if err != nil {
		host = r.Host
	}
	if ip, err := netip.ParseAddr(host); err == nil {
		if ip.IsLoopback() || ip.IsPrivate() || ip.IsUnspecified() || isLocalIP(ip) {
			return true
		}
	}
	if hostAllowed(host) {
		if r.Method == http.MethodOptions {
			w.WriteHeader(http.StatusNoContent)
			return false
		}
		return true
	}
	w.WriteHeader(http.StatusForbidden)
	return false
}

// hostAllowed is Ollama's allowedHost: no host, localhost, this machine's
// hostname, or a name under .localhost, .local or .internal (which includes
// Docker's host.docker.internal).
func hostAllowed(host string) bool {
	host = strings.ToLower(host)
	if host == "" || host == "localhost" {
		return true
	}
	if hostname, err := os.Hostname(); err == nil && host == strings.ToLower(hostname) {
		return true
	}
	for _, tld := range []string{".localhost", ".local", ".internal"} {
		if strings.HasSuffix(host, tld) {
			return true
		}
	}
	return false
}

// isLocalIP reports whether ip is one of this machine's interface addresses.
func isLocalIP(ip netip.Addr) bool {
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return false
	}
	for _, a := range addrs {
		if prefix, err := netip.ParsePrefix(a.String()); err == nil && prefix.Addr() == ip {
			return true
		}
	}
	return false
}
