package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/slapenir/slapenir/internal/up"
)

// agentUID is the agent user the seed names: agent, uid and gid 1000.
const agentUID = 1000

// shellUsage is `slapenir shell -h`: ours, not bash's.
const shellUsage = `usage: slapenir shell [--state-dir DIR] [ARGS... | -- CMD ARGS...]

A shell as the agent (uid 1000, no privileges), with the agent's environment.

On the host it joins the agent of the slapenir up running on the state
directory DIR (default $SLAPENIR_STATE_DIR, else up's: /var/lib/slapenir-up as
root, ~/.local/state/slapenir/up otherwise) — its network namespace, user and
environment — and refuses when no up runs there: start one with slapenir up
first. Inside the agent (the agent container, or a shell or command of up) it
is the agent's own shell.

ARGS go to bash (else sh); -- CMD ARGS runs CMD instead.
`

// runShell replaces itself with bash (else sh), or with the command after
// "--", as the agent. As root it drops to uid/gid 1000 with no
// supplementary groups and no_new_privs first, so `docker exec -it
// slapenir-agent bash` (whose .bashrc comes here) is a shell as agent, as
// the seed says, and `slapenir up -- CMD` runs CMD as the agent; as anyone
// else it just runs the program.
func runShell(args []string, stdout, stderr io.Writer) int {
	stateDir := ""
	switch {
	case len(args) >= 2 && args[0] == "--state-dir":
		stateDir, args = args[1], args[2:]
	case len(args) >= 1 && strings.HasPrefix(args[0], "--state-dir="):
		stateDir, args = strings.TrimPrefix(args[0], "--state-dir="), args[1:]
	}
	if len(args) > 0 && (args[0] == "-h" || args[0] == "--help") {
		fmt.Fprint(stdout, shellUsage)
		return 0
	}
	// On the host: join the agent of a running up, as `docker exec -it
	// slapenir-agent bash` joins the container's, or nothing. A shell here
	// would be on the host's network with no proxy, and look like the
	// agent's. Inside the agent (the container's image and up's agent set
	// InAgentEnv) this is the agent already.
	if os.Getenv(up.InAgentEnv) == "" {
		return joinUp(stateDir, args, stderr)
	}
	var prog string
	var err error
	if len(args) > 0 && args[0] == "--" {
		args = args[1:]
		if len(args) == 0 {
			fmt.Fprintln(stderr, "slapenir shell: nothing after --: give the command to run as the agent")
			return 2
		}
		if prog, err = exec.LookPath(args[0]); err != nil {
			fmt.Fprintf(stderr, "slapenir shell: %v (PATH=%s)\n", err, os.Getenv("PATH"))
			return 127
		}
		args = args[1:]
	} else {
		if prog, err = exec.LookPath("bash"); err != nil {
			if prog, err = exec.LookPath("sh"); err != nil {
				fmt.Fprintln(stderr, "slapenir shell: neither bash nor sh is on PATH")
				return 127
			}
		}
		if len(args) == 0 {
			args = []string{"-i"}
		}
	}
	env := os.Environ()
	if os.Geteuid() == 0 {
		if err := dropToAgent(); err != nil {
			fmt.Fprintf(stderr, "slapenir shell: cannot become the agent (uid %d): %v\n", agentUID, err)
			return 1
		}
		// The agent's home: the container's /home/agent, or up's, which
		// up sets; root's is not the agent's.
		if h := os.Getenv("HOME"); h == "" || h == "/root" {
			env = append(env, "HOME=/home/agent")
		}
		env = append(env, "USER=agent", "LOGNAME=agent")
	}
	err = syscall.Exec(prog, append([]string{prog}, args...), env)
	fmt.Fprintf(stderr, "slapenir shell: exec %s: %v\n", prog, err)
	return 127
}

// joinUp replaces itself with `slapenir shell` in the agent of the up
// running on stateDir, or says why it cannot.
func joinUp(stateDir string, args []string, stderr io.Writer) int {
	argv, env, dir, err := up.Attach(stateDir, args)
	switch {
	case errors.Is(err, up.ErrNoUp):
		fmt.Fprintf(stderr, "slapenir shell: %v: start one with slapenir up first, or give the state directory of the one running with --state-dir DIR; a shell here would be on this machine's network, unconfined\n", err)
		return 1
	case err != nil:
		fmt.Fprintf(stderr, "slapenir shell: cannot join the agent of slapenir up: %v\n", err)
		return 1
	}
	if dir != "" {
		_ = os.Chdir(dir)
	}
	prog, err := exec.LookPath(argv[0])
	if err != nil {
		fmt.Fprintf(stderr, "slapenir shell: %v\n", err)
		return 127
	}
	err = syscall.Exec(prog, argv, env)
	fmt.Fprintf(stderr, "slapenir shell: exec %s: %v\n", prog, err)
	return 127
}

func dropToAgent() error {
	if err := unix.Setgroups(nil); err != nil {
		return err
	}
	if err := unix.Setgid(agentUID); err != nil {
		return err
	}
	if err := unix.Setuid(agentUID); err != nil {
		return err
	}
	return unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0)
}
