package policy

// Reasons a Decision carries. They are part of the audit log's format:
// never rename one.
const (
	ReasonAllowlist       = "allowlist"        // an allow glob matched
	ReasonDenylist        = "denylist"         // a deny glob matched
	ReasonTelemetry       = "telemetry"        // a built-in telemetry host matched
	ReasonDefaultAllow    = "default_allow"    // no rule matched, policy.default is allow
	ReasonDefaultDeny     = "default_deny"     // no rule matched, policy.default is deny
	ReasonConnectPort     = "connect_port"     // CONNECT to a port outside connect_ports
	ReasonMethodDenied    = "method_denied"    // a rule narrowed to methods refused the request's method
	ReasonPathDenied      = "path_denied"      // a rule narrowed to paths refused the request's path
	ReasonPrivateAddress  = "private_address"  // resolved to a loopback/private/reserved address
	ReasonMetadataAddress = "metadata_address" // resolved to a cloud metadata address
	ReasonPrivateAllow    = "private_allow"    // a private address, allowed by private_allow
	ReasonPublicAddress   = "public_address"   // the address check passed: nothing private about it
)

// Decision is the outcome of one policy check.
type Decision struct {
	Allow  bool   // may the request proceed (true in report mode even when a rule would deny)
	Report bool   // mode=report turned a deny into an allow: audit as "report"
	Reason string // one of the Reason constants
	Rule   string // the glob / CIDR / port that decided it, "" if none
}

// refuse builds the decision for a rule that denies: in report mode the
// request goes ahead, marked so that the audit log shows what enforce mode
// would have done.
func (p *Policy) refuse(reason, rule string) Decision {
	if p.report {
		return Decision{Allow: true, Report: true, Reason: reason, Rule: rule}
	}
	return Decision{Reason: reason, Rule: rule}
}
