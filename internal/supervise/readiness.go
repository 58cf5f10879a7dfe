package supervise

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"time"

	"golang.org/x/sys/unix"
)

// watchReady probes s until it is ready or its readiness timeout passes. A
// service that never gets ready is killed, and the restart policy treats
// that like any other crash.
func (sv *supervisor) watchReady(s *service, env []string, notify *os.File) {
	r := s.conf.Ready
	ctx, cancel := context.WithTimeout(context.Background(), r.Timeout)
	s.cancelReady = cancel
	gen := s.gen
	go func() {
		var err error
		switch {
		case notify != nil:
			err = waitNotify(ctx, notify)
		default:
			err = poll(ctx, r.Interval, func(ctx context.Context) error { return sv.probe(ctx, s, env) })
		}
		sv.post(func() {
			if s.gen != gen || s.state != stateStarting {
				return
			}
			s.cancelReady = nil
			cancel()
			if err == nil {
				s.state = stateUp
				sv.log.initf("%s ready", s.conf.Name)
				return
			}
			sv.log.initf("%s not ready after %s (%v): killing it", s.conf.Name, r.Timeout, err)
			_ = unix.Kill(-s.pid, unix.SIGKILL)
		})
	}()
}

// probeClient ignores HTTP_PROXY: a readiness URL is the service itself.
var probeClient = &http.Client{Transport: &http.Transport{Proxy: nil}}

func poll(ctx context.Context, every time.Duration, try func(context.Context) error) error {
	for {
		err := try(ctx)
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(every):
		}
	}
}

func (sv *supervisor) probe(ctx context.Context, s *service, env []string) error {
	r := s.conf.Ready
	switch {
	case r.TCP != "":
		var d net.Dialer
		c, err := d.DialContext(ctx, "tcp", r.TCP)
		if err != nil {
			return err
		}
		return c.Close()
	case r.HTTP != "":
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, r.HTTP, nil)
		if err != nil {
			return err
		}
		resp, err := probeClient.Do(req)
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode >= 400 {
			return fmt.Errorf("GET %s: %s", r.HTTP, resp.Status)
		}
		return nil
	default:
		return sv.runProbeCommand(ctx, s, env)
	}
}

// runProbeCommand runs the readiness command as the service's user, through
// the reaper like every other child of init.
func (sv *supervisor) runProbeCommand(ctx context.Context, s *service, env []string) error {
	devnull, err := os.OpenFile(os.DevNull, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	defer devnull.Close()
	pid, ch, err := sv.spawn(process{
		argv: s.conf.Ready.Command, env: env, dir: s.conf.Dir, id: s.id,
		files: []*os.File{devnull, devnull, devnull},
	})
	if err != nil {
		return err
	}
	select {
	case ws := <-ch:
		if ws.Exited() && ws.ExitStatus() == 0 {
			return nil
		}
		return fmt.Errorf("readiness command %s", describeExit(ws))
	case <-ctx.Done():
		_ = unix.Kill(-pid, unix.SIGKILL)
		<-ch
		return ctx.Err()
	}
}

// waitNotify waits for the service to write a line to its notification fd.
func waitNotify(ctx context.Context, notify *os.File) error {
	done := make(chan error, 1)
	go func() {
		_, err := bufio.NewReader(notify).ReadString('\n')
		if err != nil {
			err = errors.New("notification fd closed without a line")
		}
		done <- err
	}()
	defer notify.Close()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}
