package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/slapenir/slapenir/internal/enforce"
)

func runEnforce(args []string, stdout, stderr io.Writer) int {
	return enforceMain(args, stdout, stderr)
}

func enforceMain(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("enforce", flag.ContinueOnError)
	fs.SetOutput(stderr)
	proxy := fs.String("proxy", enforce.DefaultProxyAddr(os.Getenv), "proxy host:port to allow (default $SLAPENIR_PROXY_ADDR, else "+enforce.DefaultProxy+")")
	ca := fs.String("ca", "", "CA host:port to allow (default derived from $STEP_CA_URL, else "+enforce.DefaultCAURL+")")
	noCA := fs.Bool("no-ca", false, "allow no CA at all (there is none to enroll or renew from, as with a development CA); excludes --ca")
	dns := fs.String("dns", "", "IP address of the only DNS resolver to allow (udp+tcp 53); empty allows none")
	allowSSH := fs.Bool("allow-ssh", false, "also allow SSH (tcp 22) to any address")
	netns := fs.String("netns", "", "network namespace to act on, as a path (/var/run/netns/NAME, /proc/PID/ns/net); default the current one")
	dryRun := fs.Bool("dry-run", false, "print the ruleset that would be installed and change nothing (no root needed)")
	check := fs.Bool("check", false, "prove enforcement is on: the proxy is reachable and a direct connection to the canary is dropped")
	canary := fs.String("canary", "", fmt.Sprintf("with --check: host:port a direct connection to must be dropped (default the proxy's address, port %d)", enforce.DefaultCanaryPort))
	timeout := fs.Duration("timeout", 2*time.Second, "with --check: how long each probe waits")
	remove := fs.Bool("remove", false, "delete the table inet "+enforce.TableName+" (egress is then unrestricted)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "slapenir enforce: unexpected argument %q (all inputs are flags; see -h)\n", fs.Arg(0))
		return 2
	}
	mode := enforce.ModeApply
	modes := 0
	for _, m := range []struct {
		on   bool
		mode enforce.Mode
	}{{*dryRun, enforce.ModeDryRun}, {*check, enforce.ModeCheck}, {*remove, enforce.ModeRemove}} {
		if m.on {
			mode = m.mode
			modes++
		}
	}
	if modes > 1 {
		fmt.Fprintln(stderr, "slapenir enforce: --dry-run, --check and --remove exclude each other; give at most one")
		return 2
	}
	if *noCA && *ca != "" {
		fmt.Fprintln(stderr, "slapenir enforce: --no-ca and --ca exclude each other; give at most one")
		return 2
	}
	if *ca == "" && !*noCA {
		addr, err := enforce.DefaultCAAddr(os.Getenv)
		if err != nil {
			fmt.Fprintln(stderr, "slapenir "+err.Error())
			return 2
		}
		*ca = addr
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	err := enforce.Run(ctx, enforce.Options{
		Mode:    mode,
		Spec:    enforce.Spec{Proxy: *proxy, CA: *ca, DNS: *dns, AllowSSH: *allowSSH},
		Target:  enforce.Target{NetNS: *netns},
		Canary:  *canary,
		Timeout: *timeout,
	}, stdout)
	if err != nil {
		fmt.Fprintln(stderr, "slapenir "+err.Error())
	}
	return enforce.ExitCode(mode, err)
}
