package proxy

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/slapenir/slapenir/internal/config"
	"github.com/slapenir/slapenir/internal/dlp"
	"github.com/slapenir/slapenir/internal/hostport"
	"github.com/slapenir/slapenir/internal/safetext"
)

// dlpRole is a role's outbound scanning: its mode and the hosts exempt.
type dlpRole struct {
	enforce bool
	exempt  []hostport.Glob
}

// newDLPRole compiles a role's dlp section; nil when it is off.
func newDLPRole(c config.DLP) (*dlpRole, error) {
	if c.Mode == "" || c.Mode == config.DLPOff {
		return nil, nil
	}
	d := &dlpRole{enforce: c.Mode == config.DLPEnforce}
	for _, h := range c.Exempt {
		g, err := hostport.ParseGlob(h)
		if err != nil {
			return nil, fmt.Errorf("dlp.exempt: %w", err)
		}
		d.exempt = append(d.exempt, g)
	}
	return d, nil
}

// mode names what the role does with a request to host:port: off,
// exempt (the host is in its dlp.exempt), report or enforce.
func (d *dlpRole) mode(host string, port int) string {
	if d == nil {
		return config.DLPOff
	}
	for _, g := range d.exempt {
		if g.Match(host, port) {
			return dlpExempt
		}
	}
	if d.enforce {
		return dlpEnforce
	}
	return dlpReport
}

// newScanner is the state's scanner: the rules, minus every placeholder of
// its credentials (each agent sends those on purpose).
func newScanner(c *Credentials) *dlp.Scanner {
	var ph []string
	if c != nil {
		for _, p := range c.vault.Placeholders() {
			ph = append(ph, p.Placeholder)
		}
	}
	return dlp.New(ph)
}

// outbound scans what the agent is about to send, as it sent it (before
// any placeholder becomes a real value): the URL, every header and the
// body. A small body of known length is scanned whole before anything is
// sent; a larger or streamed one as it goes, through a dlp.Reader. In
// enforce mode a finding in the URL, a header or a small body refuses the
// request (403 dlp_<rule>); one in a streamed body cuts it (upstreamError,
// finish). In report mode the request goes on and its record names the
// rule. It reports false when it has answered the request.
func (s *Server) outbound(w http.ResponseWriter, r *http.Request, x *exchange) bool {
	if !x.p.scans() {
		return true
	}
	enforce := x.p.dlp == dlpEnforce
	sc := x.st.scanner
	found := func(rule, where string) bool {
		x.dlp.note(rule)
		if !enforce {
			x.report("dlp_" + rule)
			return true
		}
		writeError(w, x, http.StatusForbidden, fmt.Sprintf("proxy: the request carries secret-shaped data in %s (dlp rule %s); refused by the dlp of role %s, nothing was sent", where, rule, x.role.name), "dlp_"+rule)
		return false
	}
	if rule := scanEscaped(sc, x.p.up.url.RequestURI()); rule != "" {
		// The record keeps where the request went, not what it carried.
		if p := sc.Mask(x.p.path); p != x.p.path {
			x.out.path = p
		} else if u, err := url.QueryUnescape(x.p.path); err == nil {
			x.out.path = sc.Mask(u)
		}
		if !found(rule, "its URL") {
			return false
		}
	}
	// Each header as "Name: value", so the generic rule sees the name.
	line := make([]byte, 0, 256)
	for name, vals := range r.Header {
		for _, v := range vals {
			line = append(append(append(line[:0], name...), ": "...), v...)
			if rule := sc.Scan(line); rule != "" {
				if !found(rule, "its header "+safetext.Cut(name, 64)) {
					return false
				}
			}
		}
	}
	if r.Body == nil || r.Body == http.NoBody {
		return true
	}
	if r.ContentLength >= 0 && r.ContentLength <= smallBody {
		b := make([]byte, r.ContentLength)
		_, err := io.ReadFull(r.Body, b)
		r.Body.Close()
		if err != nil {
			writeError(w, x, http.StatusBadRequest, "proxy: reading the request body failed: "+err.Error(), "client_closed")
			return false
		}
		r.Body = heldBody{bytes.NewReader(b), b}
		rule := sc.Scan(b)
		if rule == "" && bytes.IndexByte(b, '%') >= 0 {
			rule = scanEscaped(sc, string(b)) // a form, or a URL in JSON
		}
		if rule != "" {
			return found(rule, "its body")
		}
		return true
	}
	x.dlp.body = sc.NewReader(r.Body, enforce)
	r.Body = x.dlp.body
	return true
}

// heldBody is a request body already read whole, to scan it: the
// credential stage takes its bytes as they are instead of reading them
// into a second copy.
type heldBody struct {
	*bytes.Reader
	b []byte
}

func (heldBody) Close() error { return nil }

// scanEscaped scans s as sent and, when it has percent-escapes or '+',
// decoded too: an agent need only escape one character of a key to slip
// it past a scan of the raw form.
func scanEscaped(sc *dlp.Scanner, s string) string {
	if rule := sc.ScanString(s); rule != "" || !strings.ContainsAny(s, "%+") {
		return rule
	}
	if u, err := url.QueryUnescape(s); err == nil {
		return sc.ScanString(u)
	}
	return ""
}

// dlpNotes are an exchange's findings, noted from the handler and, for a
// streamed body, from the goroutine that reads it.
type dlpNotes struct {
	rules dlp.Found
	body  *dlp.Reader
}

func (n *dlpNotes) note(rule string) { n.rules.Note(rule) }

// found are the rules that matched, with a streamed body's.
func (n *dlpNotes) found() []string {
	if n.body != nil {
		for _, r := range n.body.Found() {
			n.rules.Note(r)
		}
	}
	return n.rules.Rules()
}

// noteDLP puts the findings in the record. A finding in a streamed body in
// enforce mode cut the request: the record says so, whatever the upstream
// answered to the part it got.
func (s *Server) noteDLP(x *exchange) {
	x.out.dlp = x.dlp.found()
	if len(x.out.dlp) == 0 || x.dlp.body == nil || x.p.dlp != dlpEnforce || x.out.refused {
		return
	}
	x.refuseQuietly(0, decisionDeny, "dlp_"+x.out.dlp[0],
		"the request body carried secret-shaped data (dlp rule "+x.out.dlp[0]+"); it was cut there, after "+strconv.FormatInt(x.bytesIn.Load(), 10)+" bytes had been read from the agent")
}
