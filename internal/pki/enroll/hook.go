package enroll

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"syscall"
)

// Hook is what runs after a renewal: a shell command (--exec) and/or a signal
// to a process (--pid, SIGHUP by default), so the consumer reloads its files.
type Hook struct {
	Exec   string
	PID    int
	Signal syscall.Signal
}

// Run executes the hook. The command's output goes to stderr so it shows up
// in the renewer's log.
func (h Hook) Run(ctx context.Context) error {
	if h.PID > 0 {
		sig := h.Signal
		if sig == 0 {
			sig = syscall.SIGHUP
		}
		if err := syscall.Kill(h.PID, sig); err != nil {
			return fmt.Errorf("cannot send %s to pid %d: %w (is the process still running?)", sig, h.PID, err)
		}
	}
	if h.Exec != "" {
		cmd := exec.CommandContext(ctx, "/bin/sh", "-c", h.Exec)
		cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
		if err := cmd.Run(); err != nil {
			return fmt.Errorf("--exec %q failed: %w", h.Exec, err)
		}
	}
	return nil
}
