package main

import (
	"fmt"
	"os"
	"os/exec"
	"syscall"

	"golang.org/x/sys/unix"
)

func init() {
	register("shell", "an interactive shell as the agent (uid 1000, no privileges), with the agent's environment; args go to the shell", runShell)
}

// agentUID is the agent user the seed names: agent, uid and gid 1000.
const agentUID = 1000

// runShell replaces itself with bash (else sh) as the agent. As root it
// drops to uid/gid 1000 with no supplementary groups and no_new_privs first,
// so `docker exec -it slapenir-agent bash` (whose .bashrc comes here) is a
// shell as agent, as the seed says; as anyone else it just runs the shell.
func runShell(args []string) int {
	shell, err := exec.LookPath("bash")
	if err != nil {
		if shell, err = exec.LookPath("sh"); err != nil {
			fmt.Fprintln(os.Stderr, "slapenir shell: neither bash nor sh is on PATH")
			return 127
		}
	}
	if os.Geteuid() == 0 {
		if err := dropToAgent(); err != nil {
			fmt.Fprintf(os.Stderr, "slapenir shell: cannot become the agent (uid %d): %v\n", agentUID, err)
			return 1
		}
	}
	env := append(os.Environ(), "HOME=/home/agent", "USER=agent", "LOGNAME=agent")
	if len(args) == 0 {
		args = []string{"-i"}
	}
	err = syscall.Exec(shell, append([]string{shell}, args...), env)
	fmt.Fprintf(os.Stderr, "slapenir shell: exec %s: %v\n", shell, err)
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
