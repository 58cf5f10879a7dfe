package up

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// CommandExit is Run's error when the command given to up (`up -- CMD`)
// exited non-zero: up exits with the same code.
type CommandExit struct {
	What string
	Code int
}

func (e *CommandExit) Error() string {
	return fmt.Sprintf("up: %s exited with code %d", e.What, e.Code)
}

// agentCommand is the command up runs as the agent in place of the
// heartbeat service: `slapenir shell` (which drops to uid 1000 with
// no_new_privs as root) in the agent's network namespace, with the agent
// service's environment, in its workspace, on up's terminal.
type agentCommand struct {
	argv []string // after `slapenir shell`: nil is an interactive shell
	what string   // for messages
}

// command is what Options ask up to run as the agent, or nil for the
// heartbeat placeholder service.
func (o *Options) command() *agentCommand {
	switch {
	case len(o.Command) > 0:
		return &agentCommand{argv: o.Command, what: "`" + oneLine(strings.Join(o.Command, " ")) + "`"}
	case o.Shell:
		return &agentCommand{what: "the agent's shell"}
	}
	return nil
}

// oneLine shortens a command line for up's one-line messages: its first
// line, at most 60 characters.
func oneLine(s string) string {
	cut := false
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s, cut = s[:i], true
	}
	if r := []rune(s); len(r) > 60 {
		s, cut = string(r[:60]), true
	}
	if cut {
		s += " …"
	}
	return s
}

// run starts the command and waits for it, or for ctx (SIGTERM to up),
// which stops it. The terminal's Ctrl-C is the command's while it runs: up
// tells its caller through o.Foreground, and the command stays in up's
// process group, the terminal's foreground one.
func (c *agentCommand) run(ctx context.Context, o *Options, bin string, ns *netns, env []string, dir string) error {
	argv := []string{bin, "shell"}
	if c.argv != nil {
		argv = append(append(argv, "--"), c.argv...)
	}
	if ns != nil {
		argv = append([]string{"ip", "netns", "exec", ns.Name}, argv...)
	}
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = env
	cmd.Dir = dir
	cmd.Stdin, cmd.Stdout, cmd.Stderr = o.Stdin, o.Stdout, o.Stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if o.Foreground != nil {
		o.Foreground(true)
		defer o.Foreground(false)
	}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("up: cannot start %s: %w", c.what, err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	var err error
	select {
	case err = <-done:
	case <-ctx.Done():
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case err = <-done:
		case <-time.After(5 * time.Second):
			_ = cmd.Process.Kill()
			err = <-done
		}
	}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		code := ee.ExitCode()
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			code = 128 + int(ws.Signal())
		}
		return &CommandExit{What: c.what, Code: code}
	}
	return err
}

// commandEnv is the agent service's environment for the command: init's
// environment without the spent one-time token, the agent service's own
// variables, and the control socket so `slapenir ctl status` works there.
func commandEnv(env []string, vars [][2]string, socket string) []string {
	var out []string
	for _, kv := range env {
		if !strings.HasPrefix(kv, "STEP_TOKEN=") {
			out = append(out, kv)
		}
	}
	for _, kv := range vars {
		out = append(out, kv[0]+"="+kv[1])
	}
	return append(out, "SLAPENIR_INIT_SOCKET="+socket, InAgentEnv+"=1")
}

// servicesLog opens the file the parts' output goes to while the command
// owns the terminal.
func servicesLog(state string) (*os.File, error) {
	f, err := os.OpenFile(filepath.Join(state, "services.log"), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return nil, fmt.Errorf("up: cannot open the services' log: %w", err)
	}
	return f, nil
}

// runCommand runs the command given to up as the agent, with the parts'
// output diverted to the services' log while it owns the terminal, and says
// how it ended. Its non-zero exit is Run's *CommandExit.
func runCommand(ctx context.Context, o *Options, c *agentCommand, out *sink, say func(string, ...any), bin string, ns *netns, env []string, dir, state string, ag *agentEnv) error {
	logFile, err := servicesLog(state)
	if err != nil {
		return err
	}
	defer logFile.Close()
	say("running %s as the agent; the services' output goes to %s until it exits", c.what, logFile.Name())
	prev := out.redirect(logFile)
	err = c.run(ctx, o, bin, ns, env, dir)
	out.redirect(prev)
	var ce *CommandExit
	switch {
	case errors.As(err, &ce):
		say("%s exited with code %d; stopping: the agent environment first, then the proxy", c.what, ce.Code)
	case err != nil:
		return err
	case ctx.Err() != nil:
		say("stopping %s and everything else", c.what)
	default:
		say("%s exited (code 0); stopping: the agent environment first, then the proxy", c.what)
	}
	if ag.exited() && ag.err != nil {
		err = errors.Join(err, fmt.Errorf("up: the agent environment's init exited (%v) while %s ran; see %s", ag.err, c.what, logFile.Name()))
	}
	return err
}
