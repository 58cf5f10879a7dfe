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
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// command is one subcommand: run gets the arguments after the subcommand's name
// and returns the process exit code.
type command struct {
	summary string
	run     func(args []string) int
}

var (
	commands = map[string]command{}
	// aliases maps a program name (argv[0] of a symlink) to the argument list
	// it stands for, e.g. "bootstrap-certs" → ["certs", "bootstrap"].
	aliases = map[string][]string{}
)

// register adds a subcommand. Each subcommand's file registers itself from an
// init function, so adding one never edits this file.
func register(name, summary string, run func(args []string) int) {
	if _, dup := commands[name]; dup {
		panic("slapenir: subcommand registered twice: " + name)
	}
	commands[name] = command{summary: summary, run: run}
}

// registerAlias makes the binary, invoked as name, behave like "slapenir args…".
func registerAlias(name string, args ...string) {
	aliases[name] = args
}

func main() {
	os.Exit(dispatch(filepath.Base(os.Args[0]), os.Args[1:]))
}

func dispatch(progName string, args []string) int {
	if prefix, ok := aliases[progName]; ok {
		args = append(append([]string{}, prefix...), args...)
	}
	if len(args) == 0 {
		usage(os.Stderr)
		return 2
	}
	switch args[0] {
	case "-h", "--help", "help":
		usage(os.Stdout)
		return 0
	}
	cmd, ok := commands[args[0]]
	if !ok {
		fmt.Fprintf(os.Stderr, "slapenir: unknown command %q\n\n", args[0])
		usage(os.Stderr)
		return 2
	}
	return cmd.run(args[1:])
}

func usage(w *os.File) {
	fmt.Fprintln(w, "usage: slapenir <command> [flags]")
	fmt.Fprintln(w, "\ncommands:")
	names := make([]string, 0, len(commands))
	for n := range commands {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(w, "  %-20s %s\n", n, commands[n].summary)
	}
	if len(aliases) > 0 {
		fmt.Fprintln(w, "\nalso callable (through a symlink) as:")
		as := make([]string, 0, len(aliases))
		for a, target := range aliases {
			as = append(as, fmt.Sprintf("  %-20s = slapenir %s", a, strings.Join(target, " ")))
		}
		sort.Strings(as)
		for _, a := range as {
			fmt.Fprintln(w, a)
		}
	}
	fmt.Fprintln(w, "\nRun 'slapenir <command> -h' for a command's flags.")
}
