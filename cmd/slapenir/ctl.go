package main

import (
	"flag"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/slapenir/slapenir/internal/supervise"
)

func runCtl(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("ctl", flag.ContinueOnError)
	fs.SetOutput(stderr)
	socket := fs.String("socket", superviseEnvOr("SLAPENIR_INIT_SOCKET", supervise.DefaultSocket), "init's control socket (env SLAPENIR_INIT_SOCKET)")
	timeout := fs.Duration("timeout", 15*time.Second, "how long to wait for init's answer")
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "usage: slapenir ctl [flags] status | health | start NAME | stop NAME | restart NAME")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return 2
	}
	req := supervise.Request{Cmd: fs.Arg(0), Name: fs.Arg(1)}
	switch {
	case req.Cmd == "status" || req.Cmd == "health":
		if fs.NArg() != 1 {
			fs.Usage()
			return 2
		}
	case req.Cmd == "start" || req.Cmd == "stop" || req.Cmd == "restart":
		if fs.NArg() != 2 {
			fmt.Fprintf(stderr, "slapenir ctl %s: give exactly one service name\n", req.Cmd)
			return 2
		}
	default:
		fs.Usage()
		return 2
	}
	resp, err := supervise.Call(*socket, req, *timeout)
	if err != nil {
		fmt.Fprintln(stderr, "slapenir ctl:", err)
		return 1
	}
	if !resp.OK {
		fmt.Fprintln(stderr, "slapenir ctl:", resp.Error)
		return 1
	}
	if req.Cmd == "status" {
		w := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(w, "SERVICE\tKIND\tSTATE\tPID\tUPTIME\tRESTARTS\tLAST EXIT")
		for _, s := range resp.Services {
			pid, up := "-", "-"
			if s.PID != 0 {
				pid = fmt.Sprint(s.PID)
				up = (time.Duration(s.Uptime * float64(time.Second))).Round(time.Second).String()
			}
			last := s.LastExit
			if last == "" {
				last = "-"
			}
			fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%d\t%s\n", s.Name, s.Kind, s.State, pid, up, s.Restarts, last)
		}
		w.Flush()
		return 0
	}
	fmt.Println(resp.Message)
	return 0
}
