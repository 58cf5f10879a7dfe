package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"github.com/slapenir/slapenir/internal/ollama/aider"
	"github.com/slapenir/slapenir/internal/relay"
)

// helperStartTimeout bounds the wait for a freshly started helper.
const helperStartTimeout = 10 * time.Second

// runAiderOllama takes no flags of its own: every argument is Aider's.
func runAiderOllama(args []string, stdout, stderr io.Writer) int {
	cfg, err := aider.ConfigFromEnv(os.Environ(), args)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 2
	}
	// Looked up first, so a missing Aider does not leave a helper behind.
	cmd, err := aider.AiderCommand(cfg)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 127
	}
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(cfg.HelperPort))
	logFile := filepath.Join(os.TempDir(), "ollama-proxy-helper.log")
	ctx, cancel := context.WithCancelCause(context.Background())
	defer cancel(nil)
	ctx, cancelTimeout := context.WithTimeoutCause(ctx, helperStartTimeout, fmt.Errorf("it did not start within %s", helperStartTimeout))
	defer cancelTimeout()
	started, err := relay.EnsureListening(ctx, addr, func() error { return startHelper(cfg.HelperPort, logFile, cancel) })
	if err != nil {
		fmt.Fprintf(stderr, "aider-ollama: cannot start the Ollama helper on %s: %v; see %s\n", addr, err, logFile)
		return 1
	}
	if started {
		fmt.Fprintf(stderr, "aider-ollama: started the Ollama helper on %s (log: %s)\n", addr, logFile)
	}
	home, err := os.UserHomeDir()
	if err != nil {
		fmt.Fprintf(stderr, "aider-ollama: no home directory for %s: %v\n", aider.SettingsFile, err)
		return 1
	}
	if _, err := aider.EnsureSettings(aider.SettingsPath(home), cfg.Model); err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	// Exec rather than a child: signals (Ctrl-C) and the terminal go to
	// Aider itself, and its exit status is ours.
	err = syscall.Exec(cmd.Path, cmd.Argv, cmd.Env)
	fmt.Fprintf(stderr, "aider-ollama: cannot run %s: %v\n", cmd.Path, err)
	return 126
}

// startHelper runs "slapenir ollama-proxy-helper PORT" in its own session,
// so it outlives this process (which becomes Aider), logging to logFile.
// When it exits early, failed is called with why.
func startHelper(port int, logFile string, failed context.CancelCauseFunc) error {
	self, err := os.Executable()
	if err != nil {
		return fmt.Errorf("cannot find this program to start the helper: %w", err)
	}
	out, err := os.OpenFile(logFile, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("cannot open the helper's log: %w", err)
	}
	defer out.Close()
	c := exec.Command(self, "ollama-proxy-helper", strconv.Itoa(port))
	c.Stdout, c.Stderr = out, out
	c.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := c.Start(); err != nil {
		return fmt.Errorf("cannot start %s ollama-proxy-helper: %w", self, err)
	}
	go func() {
		err := c.Wait()
		if err == nil {
			err = errors.New("exited")
		}
		failed(fmt.Errorf("the helper stopped (%v)", err))
	}()
	return nil
}
