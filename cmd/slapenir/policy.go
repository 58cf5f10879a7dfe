package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"time"

	"github.com/slapenir/slapenir/internal/config"
	"github.com/slapenir/slapenir/internal/proxy"
)

func policyMain(args []string, stdout, stderr io.Writer) int {
	return runGroup("slapenir policy", []command{
		{"explain", "what the proxy would do with a request, and why, without sending it: explain [--config FILE] [--identity NAME] [--json] [--no-lookup] METHOD URL", policyExplain},
	}, args, stdout, stderr, nil)
}

// policyExplain exits 0 when it explained the request (whatever the
// decision), 1 for a configuration with problems, 2 for bad usage.
func policyExplain(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("policy explain", flag.ContinueOnError)
	fs.SetOutput(stderr)
	configPath := fs.String("config", "", "proxy config file (default: the embedded defaults)")
	identity := fs.String("identity", "", "the agent's identity (certificate name) to check against tls.allowed_identities")
	asJSON := fs.Bool("json", false, "print the explanation as JSON")
	noLookup := fs.Bool("no-lookup", false, "do not look the host up (no address-level decision)")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: slapenir policy explain [--config FILE] [--identity NAME] [--json] [--no-lookup] METHOD URL")
		fmt.Fprintln(stderr, "\nPrints what the proxy would decide for METHOD URL (http:// as a forward request,")
		fmt.Fprintln(stderr, "https:// as a CONNECT tunnel), the reason and rule, the host's addresses, and which")
		fmt.Fprintln(stderr, "credentials would be injected where. Nothing is sent; the host is only looked up.")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() != 2 {
		fs.Usage()
		return 2
	}
	cfg := config.Default()
	if *configPath != "" {
		var err error
		if cfg, err = config.Load(*configPath); err != nil {
			fmt.Fprintln(stderr, err)
			return 1
		}
	}
	// The credentials as configured; their values are not needed.
	creds, err := cfg.Secrets.Describe()
	if err != nil {
		fmt.Fprintf(stderr, "policy explain: %v\n", err)
		return 1
	}
	e, err := proxy.NewRuleSet(cfg, creds)
	if err != nil {
		fmt.Fprintf(stderr, "policy explain: %v\n", err)
		return 1
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	x, err := e.Explain(ctx, fs.Arg(0), fs.Arg(1), *identity, !*noLookup)
	if err != nil {
		fmt.Fprintf(stderr, "policy explain: %v\n", err)
		return 2
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		_ = enc.Encode(x)
	} else {
		fmt.Fprint(stdout, x.Text())
	}
	return 0
}
