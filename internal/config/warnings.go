package config

import (
	"fmt"
	"net/netip"
	"strings"

	"github.com/slapenir/slapenir/internal/hostport"
)

// Warnings lists what is valid but most likely a mistake, each with its
// line (in line order), or is nil: a credential with plaintext_http whose hosts are
// not all local. The option exists for a test server or an Ollama on
// loopback or a private network; towards a public name it sends the real
// value where anyone on the path reads it, which a configuration may mean
// (an internal name this check does not know) but should not do
// silently. check-config prints them and the proxy logs them at start;
// neither refuses the file.
func (c *Config) Warnings() *Problems {
	v := validator{c: c, probs: &Problems{File: c.name}}
	var private []string
	for _, r := range c.EffectiveRoles() {
		private = append(private, r.Policy.PrivateAllow...)
	}
	for i, cr := range c.Secrets.Credentials {
		if !cr.PlaintextHTTP {
			continue
		}
		var public []string
		for _, h := range cr.Hosts {
			if !localHost(h, private) {
				public = append(public, h)
			}
		}
		if len(public) > 0 {
			path := fmt.Sprintf("secrets.credentials[%d].plaintext_http", i)
			v.probs.Add(v.line(path), "warning: %s: credential %q goes over plain http, readable by anyone on the path, to %s, which is not local (plaintext_http is meant for loopback and private hosts: a private address, localhost, *.localhost, *.internal, *.local, a name of one label, or a name in policy.private_allow); use https, or list only local hosts",
				path, cr.Name, strings.Join(public, ", "))
		}
	}
	if v.probs.OrNil() == nil {
		return nil
	}
	return v.probs
}

// localHost reports whether a credential's host glob names only local
// destinations: a loopback, private or link-local address; localhost and
// the names RFC 6761 and 6762 and ICANN keep off the public DNS
// (.localhost, .local, .internal); a name of one label (a compose
// service); or a name private_allow lists (its
// port, if any, does not matter here: the entry says the name is local).
func localHost(h string, privateAllow []string) bool {
	g, err := hostport.ParseGlob(h)
	if err != nil || g.Any {
		return false
	}
	if ip, err := netip.ParseAddr(g.Host); err == nil {
		ip = ip.Unmap()
		if ip.IsLoopback() || ip.IsPrivate() || ip.IsLinkLocalUnicast() {
			return true
		}
		for _, s := range privateAllow {
			if pfx, err := netip.ParsePrefix(s); err == nil && pfx.Contains(ip) {
				return true
			}
			if ap, err := netip.ParseAddrPort(s); err == nil && ap.Addr().Unmap() == ip {
				return true
			}
			if a, err := netip.ParseAddr(s); err == nil && a.Unmap() == ip {
				return true
			}
		}
		return false
	}
	name := g.Host
	if !g.Wildcard && !strings.Contains(name, ".") {
		// A name of one label (a compose service, "ollama") resolves
		// only on a local network or in /etc/hosts.
		return true
	}
	for _, tld := range []string{"localhost", "internal", "local"} {
		if name == tld || strings.HasSuffix(name, "."+tld) {
			return true
		}
	}
	for _, s := range privateAllow {
		pg, err := hostport.ParseGlob(s)
		if err != nil || strings.Contains(s, "/") {
			continue
		}
		pg.Port = 0
		switch {
		case pg.Any:
			return true
		case g.Wildcard:
			// "*.lan" is local only if every name under it is.
			if pg.Wildcard && (name == pg.Host || strings.HasSuffix(name, "."+pg.Host)) {
				return true
			}
		case pg.Match(name, 0):
			return true
		}
	}
	return false
}
