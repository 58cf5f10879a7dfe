package proxy

import (
	"fmt"
	"reflect"
	"strings"

	"github.com/slapenir/slapenir/internal/config"
)

// Reload makes cfg, with the credentials creds, the configuration new
// requests are decided by. Requests and tunnels already open finish under
// the configuration they started with; that configuration is closed
// (closeCreds, its vault, among it) when the last of them ends. On any
// error nothing changes, and closeCreds is the caller's to call.
//
// What the proxy set up at start cannot change without a restart: the
// listener, TLS, the audit log, the state directory, the interception CA
// and upstream roots, and the limits the listener enforces (max_tunnels,
// the header limit and the timeouts). A cfg that changes any of them is
// refused whole, naming them.
func (s *Server) Reload(cfg *config.Config, creds *Credentials, closeCreds func()) error {
	s.reloadMu.Lock()
	defer s.reloadMu.Unlock()
	if fixed := restartOnly(s.cfg, cfg); len(fixed) > 0 {
		return fmt.Errorf("%s changed, which takes effect only when the proxy restarts; nothing was reloaded (restart it, or put the old value back)", strings.Join(fixed, ", "))
	}
	st, err := s.newState(cfg, creds)
	if err != nil {
		return err
	}
	st.closeCreds = closeCreds
	s.liveMu.Lock()
	s.live[st] = struct{}{}
	s.liveMu.Unlock()
	s.cur.Swap(st).retire()
	s.pruneLimiters(st)
	return nil
}

// Version is the version of the configuration new requests are decided by.
func (s *Server) Version() string { return s.cur.Load().version }

// restartOnly names the settings that differ between the configuration the
// server started with and next, among those a reload cannot apply.
func restartOnly(started, next *config.Config) []string {
	var out []string
	same := func(name string, a, b any) {
		if !reflect.DeepEqual(a, b) {
			out = append(out, name)
		}
	}
	same("listen", started.Listen, next.Listen)
	same("tls", started.TLS, next.TLS)
	same("audit", started.Audit, next.Audit)
	same("state_dir", started.StateDir, next.StateDir)
	same("metrics.listen", started.Metrics.Listen, next.Metrics.Listen)
	same("intercept.ca_cert", started.Intercept.CACert, next.Intercept.CACert)
	same("intercept.ca_key", started.Intercept.CAKey, next.Intercept.CAKey)
	same("intercept.upstream_ca", started.Intercept.UpstreamCA, next.Intercept.UpstreamCA)
	a, b := started.Limits, next.Limits
	same("limits.max_tunnels", a.MaxTunnels, b.MaxTunnels)
	same("limits.max_header_bytes", a.MaxHeaderBytes, b.MaxHeaderBytes)
	same("limits.read_header_timeout", a.ReadHeaderTimeout, b.ReadHeaderTimeout)
	same("limits.idle_timeout", a.IdleTimeout, b.IdleTimeout)
	same("limits.shutdown_grace", a.ShutdownGrace, b.ShutdownGrace)
	return out
}
