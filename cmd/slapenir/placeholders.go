package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"github.com/slapenir/slapenir/internal/pki/certfile"
	"github.com/slapenir/slapenir/internal/secrets"
)

// envName is what a shell and init's $SLAPENIR_EXPORT accept as a name.
var envName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// certsPlaceholders asks the proxy which placeholders the agent's role may
// use and hands them to the agent's tools: as KEY=VALUE lines in
// $SLAPENIR_EXPORT (init then gives them to every service started after
// it), in a file an interactive shell sources (--shell-file), or printed
// as export lines for eval. Placeholders are not secrets, but only names
// are logged: the log is about what was set, and stays short.
func certsPlaceholders(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("certs placeholders", flag.ContinueOnError)
	fs.SetOutput(stderr)
	dir := fs.String("dir", defaultCertsDir(), "the agent's certificate directory (cert.pem, key.pem, root_ca.pem; $SLAPENIR_CERTS_DIR when set)")
	proxyURL := fs.String("proxy", certsEnv("SLAPENIR_PROXY_URL", "https://proxy:3000"), "the proxy that holds the credentials")
	timeout := fs.Duration("timeout", time.Minute, "how long to keep trying the proxy")
	shellFile := fs.String("shell-file", "", "also write `export NAME='placeholder'` lines to this file, for interactive shells to source")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: slapenir certs placeholders [--dir DIR] [--proxy URL] [--shell-file FILE]")
		fmt.Fprintln(stderr, "\nWith $SLAPENIR_EXPORT set (as an init oneshot) writes NAME=placeholder lines there;")
		fmt.Fprintln(stderr, "otherwise prints export lines: eval \"$(slapenir certs placeholders)\".")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil || fs.NArg() != 0 {
		return 2
	}
	logf := certsLog("placeholders", stderr)
	list, err := fetchPlaceholders(certfile.Dir(*dir), *proxyURL, *timeout)
	if err != nil {
		logf("%v", err)
		return 1
	}
	var kv, names []string
	for _, p := range list {
		switch {
		case p.Env == "":
			logf("credential %q has no variable for the agent (a file credential without agent_env): not exported; give it agent_env in the proxy's configuration", p.Name)
		case !envName.MatchString(p.Env):
			logf("credential %q: %q is not a variable name: not exported", p.Name, p.Env)
		case strings.ContainsAny(p.Placeholder, "\x00\r\n"):
			logf("credential %q: its placeholder spans lines: not exported", p.Name)
		default:
			kv = append(kv, p.Env+"="+p.Placeholder)
			names = append(names, fmt.Sprintf("%s (%s)", p.Env, p.Name))
		}
	}
	if *shellFile != "" {
		var b strings.Builder
		b.WriteString("# The placeholders of the credentials the proxy holds for this agent (slapenir certs placeholders).\n")
		for _, l := range kv {
			k, v, _ := strings.Cut(l, "=")
			fmt.Fprintf(&b, "export %s=%s\n", k, shellQuote(v))
		}
		if err := os.MkdirAll(filepath.Dir(*shellFile), 0o755); err != nil {
			logf("%v", err)
			return 1
		}
		if err := certfile.WriteAtomic(*shellFile, []byte(b.String()), 0o644); err != nil {
			logf("%v", err)
			return 1
		}
	}
	if exp := os.Getenv("SLAPENIR_EXPORT"); exp != "" {
		body := strings.Join(kv, "\n")
		if body != "" {
			body += "\n"
		}
		if err := os.WriteFile(exp, []byte(body), 0o600); err != nil {
			logf("cannot write $SLAPENIR_EXPORT %s: %v", exp, err)
			return 1
		}
	} else {
		for _, l := range kv {
			k, v, _ := strings.Cut(l, "=")
			fmt.Fprintf(stdout, "export %s=%s\n", k, shellQuote(v))
		}
	}
	if len(names) == 0 {
		logf("the proxy holds no credential for this agent: no placeholder to export (credentials: the secrets section of the proxy's configuration)")
		return 0
	}
	logf("exported %d placeholder(s): %s", len(names), strings.Join(names, ", "))
	return 0
}

// shellQuote quotes s for sh: in single quotes, each ' written as '\”.
func shellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// fetchPlaceholders asks the proxy for GET /placeholders (proxyGet).
func fetchPlaceholders(d certfile.Dir, proxyURL string, timeout time.Duration) ([]secrets.Placeholder, error) {
	var list []secrets.Placeholder
	err := proxyGet(d, proxyURL, "/placeholders", "the placeholders", timeout, func(b []byte) error {
		list = nil
		if err := json.Unmarshal(b, &list); err != nil {
			return fmt.Errorf("the answer is not a list of placeholders: %v", err)
		}
		return nil
	})
	return list, err
}
