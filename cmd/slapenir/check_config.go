package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/slapenir/slapenir/internal/config"
	"github.com/slapenir/slapenir/internal/policy"
)

// checkConfig exits 0 for a good file, 1 for a file with problems and 2
// when it cannot judge (bad usage, unreadable file).
func checkConfig(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("check-config", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: slapenir check-config FILE")
		fmt.Fprintln(stderr, "\nChecks a proxy configuration file and prints every problem as FILE:LINE: message.")
		fmt.Fprintln(stderr, "Exit status: 0 valid, 1 problems found, 2 usage error or unreadable file.")
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() != 1 {
		fs.Usage()
		return 2
	}
	name := fs.Arg(0)
	data, err := os.ReadFile(name)
	if err != nil {
		fmt.Fprintf(stderr, "check-config: cannot read %s: %v\n", name, errors.Unwrap(err))
		return 2
	}
	cfg, err := config.Parse(name, data)
	if err == nil {
		// Validate and New agree by design; compiling proves it for this file.
		for _, r := range cfg.EffectiveRoles() {
			if _, err = policy.New(r.Policy); err != nil {
				break
			}
		}
	}
	if err == nil {
		err = cfg.CheckFiles()
	}
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	// A warning names what is valid but most likely a mistake; the file
	// still passes, since only its author knows whether it is one.
	if w := cfg.Warnings(); w != nil {
		fmt.Fprintln(stderr, w)
	}
	fmt.Fprintf(stdout, "%s: ok\n", name)
	printSummary(stdout, cfg)
	return 0
}

func printSummary(w io.Writer, c *config.Config) {
	p := c.Policy
	telemetry := "off"
	if p.TelemetryOn() {
		telemetry = fmt.Sprintf("on (%d hosts)", len(policy.TelemetryHosts))
	}
	ports := make([]string, len(p.ConnectPorts))
	for i, port := range p.ConnectPorts {
		ports[i] = fmt.Sprint(port)
	}
	audit := []string{}
	if c.Audit.File != "" {
		audit = append(audit, "file "+c.Audit.File)
	}
	if c.Audit.Stdout {
		audit = append(audit, "stdout")
	}
	fmt.Fprintf(w, "  listen         %s\n", c.Listen)
	fmt.Fprintf(w, "  policy         default %s, mode %s\n", p.Default, p.Mode)
	fmt.Fprintf(w, "  rules          %d allow, %d deny, %d private_allow; telemetry deny %s\n", len(p.Allow), len(p.Deny), len(p.PrivateAllow), telemetry)
	fmt.Fprintf(w, "  connect ports  %s\n", orNone(strings.Join(ports, ", "), "none (CONNECT disabled)"))
	fmt.Fprintf(w, "  audit          %s\n", strings.Join(audit, " and "))
	var roles []string
	for _, r := range c.EffectiveRoles() {
		if r.Identities == nil {
			continue
		}
		roles = append(roles, fmt.Sprintf("%s (%s; default %s, dlp %s)", r.Name, strings.Join(r.Identities, " "), r.Policy.Default, r.DLP.Mode))
	}
	fmt.Fprintf(w, "  roles          %s; everyone else: %s\n", orNone(strings.Join(roles, ", "), "none"), c.DefaultRole)
	fmt.Fprintf(w, "  dlp            %s (the default role)\n", c.DLP.Mode)
	tlsMode := "development CA in the state directory"
	if c.TLS != nil {
		tlsMode = "cert " + c.TLS.Cert + ", clients from " + c.TLS.ClientCA + ", identities " + strings.Join(c.TLS.Identities(), " ")
	}
	fmt.Fprintf(w, "  mTLS           %s\n", tlsMode)
	// Names and where each value comes from; never a value.
	var creds []string
	for _, cr := range c.Secrets.Credentials {
		src := "env " + cr.Env
		if cr.File != "" {
			src = "file " + cr.File
		}
		var locs []string
		for _, l := range cr.InjectIn() {
			locs = append(locs, string(l))
		}
		over := "over TLS only"
		if cr.PlaintextHTTP {
			over = "over TLS and plain http"
		}
		creds = append(creds, fmt.Sprintf("%s (%s → %s; injected in %s, %s)", cr.Name, src, strings.Join(cr.Hosts, ", "), strings.Join(locs, ", "), over))
	}
	fmt.Fprintf(w, "  credentials    %s\n", orNone(strings.Join(creds, "; "), "none"))
	fmt.Fprintf(w, "  inspected      %s\n", orNone(strings.Join(c.Intercept.Hosts, ", "), "credential hosts only"))
}

func orNone(s, none string) string {
	if s == "" {
		return none
	}
	return s
}
