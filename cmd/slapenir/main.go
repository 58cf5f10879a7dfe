// Command slapenir is the multi-call binary of SLAPENIR: the proxy, the agent's
// init, the certificate tools and the relay. It only parses flags and wires the
// packages under internal/ together.
//
// It dispatches on its first argument (slapenir proxy …) and, when invoked through
// a symlink, on the name it was called by (bootstrap-certs, ollama-verify, …), so
// the seed's script names keep working.
package main

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// command is one subcommand: run gets the arguments after the subcommand's
// name and the writers for its output, and returns the exit code.
type command struct {
	name, summary string
	run           func(args []string, stdout, stderr io.Writer) int
}

// commands is every subcommand, in the order `slapenir -h` lists them.
var commands = []command{
	{"up", "the whole system on one machine without Docker: CA, proxy, Ollama, and an agent under slapenir init; up -- CMD runs CMD as the agent", runUp},
	{"proxy", "run the egress proxy (the gateway every agent request leaves through)", runProxy},
	{"check-config", "validate a proxy config file, print every problem with its line", checkConfig},
	{"policy", "explain what the proxy would do with a request (policy explain METHOD URL)", policyMain},
	{"audit", "read, filter, verify and watch audit logs (show, verify, stats, serve)", auditMain},
	{"init", "PID 1 supervisor of the agent container (services, restarts, logs, ctl socket)", runInit},
	{"ctl", "talk to a running init: status | health | start NAME | stop NAME | restart NAME", runCtl},
	{"agent", "placeholder agent: environment report, proxy health, heartbeat every 30 s", runAgent},
	{"certs", "Step-CA enrollment (bootstrap), renewal daemon, inspect, token minting, dev-issue", runCerts},
	{"ca", "run step-ca for the containers: create its CA on first start, mint the proxy's and agents' one-time tokens", runCA},
	{"relay", "local forward proxy (127.0.0.1:3128) and Ollama helper (127.0.0.1:8765), both to the proxy over mTLS", runRelay},
	{"ollama-proxy-helper", "the Ollama helper alone (the seed's Option C): ollama-proxy-helper [PORT]", runOllamaProxyHelper},
	{"ollama-verify", "check that Ollama and the model are reachable through the proxy (the seed's start-up check)", runOllamaVerify},
	{"aider-ollama", "run Aider on Ollama through the proxy: starts the helper if needed, then aider --model ollama_chat/$OLLAMA_MODEL ARGS", runAiderOllama},
	{"enforce", "nftables egress lock-down of the agent's network namespace (--check proves it, --dry-run shows it)", runEnforce},
	{"fake-ollama", "serve a fake Ollama (for tests, slapenir up, and trying the Ollama path without a GPU)", runFakeOllama},
	{"shell", "an interactive shell as the agent (uid 1000, no privileges), with the agent's environment; on the host, joins the agent of a running up ([--state-dir DIR]) and refuses when none runs; args go to the shell, or -- CMD ARGS runs CMD instead", runShell},
	{"version", "print version and build information", runVersion},
}

// aliases maps a program name (argv[0] of a symlink: the seed's script
// names) to the argument list it stands for.
var aliases = map[string][]string{
	"bootstrap-certs":     {"certs", "bootstrap"},
	"ollama-verify":       {"ollama-verify"},
	"ollama-proxy-helper": {"ollama-proxy-helper"},
	"aider-ollama":        {"aider-ollama"},
}

func main() {
	os.Exit(dispatch(filepath.Base(os.Args[0]), os.Args[1:], os.Stdout, os.Stderr))
}

func dispatch(progName string, args []string, stdout, stderr io.Writer) int {
	if prefix, ok := aliases[progName]; ok {
		args = append(append([]string{}, prefix...), args...)
	}
	return runGroup("slapenir", commands, args, stdout, stderr, usageFooter)
}

// usageFooter ends `slapenir -h`: the script names and where flags are.
func usageFooter(w io.Writer) {
	fmt.Fprintln(w, "\nalso callable (through a symlink) as:")
	as := make([]string, 0, len(aliases))
	for a, target := range aliases {
		as = append(as, fmt.Sprintf("  %-20s = slapenir %s", a, strings.Join(target, " ")))
	}
	sort.Strings(as)
	for _, a := range as {
		fmt.Fprintln(w, a)
	}
	fmt.Fprintln(w, "\nRun 'slapenir <command> -h' for a command's flags.")
}

// runGroup runs the command of list named by args[0]: the one way the
// binary and its command groups (certs, audit, policy, ca) dispatch and
// print their usage — on stdout with exit 0 when asked for (-h, --help,
// help), on stderr with exit 2 for a missing or unknown name.
func runGroup(prog string, list []command, args []string, stdout, stderr io.Writer, footer func(io.Writer)) int {
	if len(args) > 0 {
		for _, c := range list {
			if c.name == args[0] {
				return c.run(args[1:], stdout, stderr)
			}
		}
	}
	w, code := stderr, 2
	switch {
	case len(args) > 0 && (args[0] == "-h" || args[0] == "--help" || args[0] == "help"):
		w, code = stdout, 0
	case len(args) > 0:
		fmt.Fprintf(w, "%s: unknown command %q\n\n", prog, args[0])
	}
	fmt.Fprintf(w, "usage: %s <command> [flags]\n\ncommands:\n", prog)
	width := 0
	for _, c := range list {
		width = max(width, len(c.name))
	}
	for _, c := range list {
		fmt.Fprintf(w, "  %-*s  %s\n", width, c.name, c.summary)
	}
	if footer != nil {
		footer(w)
	}
	return code
}
