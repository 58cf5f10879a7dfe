package enforce

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/netip"
	"strings"
	"time"
)

// Mode is what one run of `slapenir enforce` does.
type Mode int

// The modes, one per run.
const (
	ModeApply  Mode = iota // install the rules
	ModeDryRun             // print the rules, touch nothing
	ModeCheck              // prove the rules are on, from inside the namespace
	ModeRemove             // delete the table
)

// Options is one run of `slapenir enforce`.
type Options struct {
	Mode     Mode
	Spec     Spec
	Target   Target
	Canary   string        // host:port for ModeCheck; "" uses DefaultCanary
	Timeout  time.Duration // per probe of ModeCheck
	Resolver Resolver      // nil uses net.DefaultResolver
}

// Exit codes of the subcommand: a failed check (or dry run, or removal) is
// ExitFailed; a failed install is ExitFatal (100+, the seed's contract: the
// container stops) because the agent must never run unconfined.
const (
	ExitOK     = 0
	ExitFailed = 1
	ExitFatal  = 100
)

// ExitCode maps Run's error to the process exit code.
func ExitCode(mode Mode, err error) int {
	switch {
	case err == nil:
		return ExitOK
	case mode == ModeApply:
		return ExitFatal
	default:
		return ExitFailed
	}
}

// Run does what o asks and reports to w.
func Run(ctx context.Context, o Options, w io.Writer) error {
	r := o.Resolver
	if r == nil {
		r = net.DefaultResolver
	}
	switch o.Mode {
	case ModeRemove:
		if err := Remove(o.Target); err != nil {
			return err
		}
		fmt.Fprintf(w, "slapenir enforce: removed table inet %s from %s; egress is NOT restricted any more\n", TableName, o.Target)
		return nil
	case ModeCheck:
		return runCheck(ctx, o, r, w)
	}
	p, err := Resolve(ctx, r, o.Spec)
	if err != nil {
		return err
	}
	rs := Build(p)
	if o.Mode == ModeDryRun {
		fmt.Fprintf(w, "# slapenir enforce --dry-run: the ruleset it would install in %s (nothing changed)\n", o.Target)
		_, err := io.WriteString(w, rs.String())
		return err
	}
	if err := Apply(rs, o.Target); err != nil {
		return err
	}
	fmt.Fprintf(w, "slapenir enforce: egress locked down in %s: %s; everything else is logged (prefix %q) and dropped\n", o.Target, p.Summary(), LogPrefixOut)
	return nil
}

func runCheck(ctx context.Context, o Options, r Resolver, w io.Writer) error {
	proxy, err := resolveHostPort(ctx, r, "proxy", o.Spec.Proxy)
	if err != nil {
		return err
	}
	canary, err := DefaultCanary(Policy{Proxy: proxy})
	if err != nil {
		return err
	}
	if o.Canary != "" {
		c, err := resolveHostPort(ctx, r, "canary", o.Canary)
		if err != nil {
			return err
		}
		canary = c[0]
	}
	if err := Check(ctx, Probe{Proxy: proxy, Canary: canary, Timeout: o.Timeout}, o.Target); err != nil {
		return err
	}
	fmt.Fprintf(w, "slapenir enforce: check passed in %s: proxy %s reachable, direct connection to canary %s dropped\n", o.Target, joinAddrPorts(proxy), canary)
	return nil
}

// Summary says in one line what the policy allows.
func (p Policy) Summary() string {
	dns := "none"
	if p.DNS.IsValid() {
		dns = p.DNS.String() + ":53"
	}
	ssh := "blocked"
	if p.AllowSSH {
		ssh = "allowed (tcp 22 to any address)"
	}
	return fmt.Sprintf("allowed: loopback, replies, proxy %s, CA %s, DNS %s; SSH %s", joinAddrPorts(p.Proxy), joinAddrPorts(p.CA), dns, ssh)
}

func joinAddrPorts(aps []netip.AddrPort) string {
	if len(aps) == 0 {
		return "none"
	}
	s := make([]string, len(aps))
	for i, ap := range aps {
		s[i] = ap.String()
	}
	return strings.Join(s, ",")
}
