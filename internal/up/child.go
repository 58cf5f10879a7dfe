package up

import (
	"fmt"
	"io"
	"os/exec"
	"strings"
	"syscall"
	"time"
)

// child is a process up started: in its own process group, so that the
// terminal's Ctrl-C reaches up alone and up decides the order things stop
// in, and killed by the kernel if up dies.
type child struct {
	cmd  *exec.Cmd
	done chan struct{}
	err  error // cmd.Wait's, once done is closed
}

func startChild(argv, env []string, out io.Writer) (*child, error) {
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = env
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("up: cannot start %s: %w", strings.Join(argv, " "), err)
	}
	c := &child{cmd: cmd, done: make(chan struct{})}
	go func() {
		c.err = cmd.Wait()
		close(c.done)
	}()
	return c, nil
}

func (c *child) exited() bool {
	select {
	case <-c.done:
		return true
	default:
		return false
	}
}

// stop sends SIGTERM to pid (the child, or the process it wraps) and kills
// the child's whole process group if it has not exited within grace.
func (c *child) stop(pid int, grace time.Duration) error {
	if c.exited() {
		return nil
	}
	_ = syscall.Kill(pid, syscall.SIGTERM)
	select {
	case <-c.done:
		return nil
	case <-time.After(grace):
	}
	_ = syscall.Kill(-c.cmd.Process.Pid, syscall.SIGKILL)
	<-c.done
	return fmt.Errorf("up: %s did not stop within %s of SIGTERM; killed it", c.cmd.Args[0], grace)
}
