package main

import (
	"flag"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/slapenir/slapenir/internal/initconf"
	"github.com/slapenir/slapenir/internal/supervise"
)

func superviseEnvOr(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}

func runInit(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("init", flag.ContinueOnError)
	fs.SetOutput(stderr)
	config := fs.String("config", superviseEnvOr("SLAPENIR_INIT_CONFIG", "/etc/slapenir/agent-services.yaml"), "service file (env SLAPENIR_INIT_CONFIG)")
	socket := fs.String("socket", superviseEnvOr("SLAPENIR_INIT_SOCKET", supervise.DefaultSocket), "control socket for `slapenir ctl` (env SLAPENIR_INIT_SOCKET); empty disables it")
	group := fs.String("socket-group", "agent", "group allowed to use the control socket (name or gid)")
	check := fs.Bool("check", false, "validate the service file and its users, then exit")
	shutdown := fs.Duration("shutdown-timeout", 9*time.Second, "bound on a whole shutdown, after which what still runs is killed")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "slapenir init: unexpected argument %q (the service file is given with --config)\n", fs.Arg(0))
		return 2
	}
	f, err := initconf.Load(*config)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 2
	}
	if *check {
		if err := supervise.Check(f); err != nil {
			fmt.Fprintln(stderr, err)
			return 2
		}
		fmt.Printf("%s: %d services, OK\n", *config, len(f.Services))
		return 0
	}
	return supervise.Run(f, supervise.Options{
		Stdout:          stdout,
		Socket:          *socket,
		SocketGroup:     *group,
		Env:             os.Environ(),
		ShutdownTimeout: *shutdown,
	})
}
