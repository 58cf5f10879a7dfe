package supervise

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/slapenir/slapenir/internal/initconf"
)

// DefaultSocket is where init listens for `slapenir ctl`.
const DefaultSocket = "/run/slapenir/init.sock"

// Request is one ctl command, sent as a JSON line.
type Request struct {
	Cmd  string `json:"cmd"` // status, health, start, stop, restart
	Name string `json:"name,omitempty"`
}

// Response is init's answer, one JSON line.
type Response struct {
	OK       bool            `json:"ok"`
	Error    string          `json:"error,omitempty"`
	Message  string          `json:"message,omitempty"`
	Services []ServiceStatus `json:"services,omitempty"`
}

// ServiceStatus is one row of `ctl status`.
type ServiceStatus struct {
	Name     string  `json:"name"`
	Kind     string  `json:"kind"`
	Required bool    `json:"required"`
	State    string  `json:"state"`
	PID      int     `json:"pid,omitempty"`
	Restarts int     `json:"restarts"`
	LastExit string  `json:"last_exit,omitempty"`
	Uptime   float64 `json:"uptime_seconds,omitempty"`
}

// listenControl opens the control socket, usable by root and by members of
// group only (mode 0660).
func listenControl(path, group string) (ln net.Listener, warn string, err error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, "", fmt.Errorf("cannot create the control socket's directory: %w", err)
	}
	if fi, err := os.Lstat(path); err == nil && fi.Mode()&os.ModeSocket != 0 {
		os.Remove(path) // left over from an earlier init in this container
	}
	// Created 0660 from the start: no moment where anyone may connect.
	// (Before any service starts, so the process-wide umask harms nothing.)
	old := syscall.Umask(0o117)
	ln, err = net.Listen("unix", path)
	syscall.Umask(old)
	if err != nil {
		return nil, "", fmt.Errorf("cannot listen on control socket %s: %w (is another init running?)", path, err)
	}
	gid := -1
	if group != "" {
		if n, err := strconv.Atoi(group); err == nil {
			gid = n
		} else if g, err := user.LookupGroup(group); err == nil {
			gid, _ = strconv.Atoi(g.Gid)
		} else {
			warn = fmt.Sprintf("control socket group %q does not exist on this system: only root can use ctl (create the group, or pass --socket-group)", group)
		}
	}
	if gid >= 0 && os.Geteuid() == 0 {
		if err := os.Chown(path, 0, gid); err != nil {
			ln.Close()
			return nil, "", fmt.Errorf("cannot give control socket %s to group %s: %w", path, group, err)
		}
	}
	if err := os.Chmod(path, 0o660); err != nil {
		ln.Close()
		return nil, "", fmt.Errorf("cannot restrict control socket %s to mode 0660: %w", path, err)
	}
	return ln, warn, nil
}

func (sv *supervisor) serveControl(ln net.Listener) {
	for {
		conn, err := ln.Accept()
		if err != nil {
			return
		}
		go sv.handleControl(conn)
	}
}

func (sv *supervisor) handleControl(conn net.Conn) {
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(30 * time.Second))
	var req Request
	line, err := bufio.NewReader(conn).ReadBytes('\n')
	if err == nil {
		err = json.Unmarshal(line, &req)
	}
	var resp Response
	if err != nil {
		resp = Response{Error: "malformed request: want one JSON line like {\"cmd\":\"status\"}"}
	} else {
		reply := make(chan Response, 1)
		sv.post(func() { sv.control(req, func(r Response) { reply <- r }) })
		select {
		case resp = <-reply:
		case <-sv.quit:
			resp = Response{Error: "init is shutting down"}
		}
	}
	_ = json.NewEncoder(conn).Encode(resp)
}

// control runs on the loop. answer may be called later (stop answers once the
// process is gone, restart once the new one runs).
func (sv *supervisor) control(req Request, answer func(Response)) {
	if req.Cmd == "status" {
		answer(Response{OK: true, Services: sv.status()})
		return
	}
	if req.Cmd == "health" {
		answer(sv.health())
		return
	}
	s, ok := sv.byName[req.Name]
	switch {
	case req.Cmd != "start" && req.Cmd != "stop" && req.Cmd != "restart":
		answer(Response{Error: fmt.Sprintf("unknown command %q (want status, health, start, stop or restart)", req.Cmd)})
		return
	case !ok:
		answer(Response{Error: fmt.Sprintf("no service named %q (see ctl status)", req.Name)})
		return
	case sv.shuttingDown:
		answer(Response{Error: "init is shutting down"})
		return
	}
	done := func(msg string) func() { return func() { answer(Response{OK: true, Message: msg}) } }
	switch req.Cmd {
	case "stop":
		s.held = true
		s.restartAfterStop = false
		if s.pid == 0 {
			s.stopTimers()
			s.gen++
			s.state = stateDown
			answer(Response{OK: true, Message: s.conf.Name + " is not running"})
			return
		}
		s.whenDown = append(s.whenDown, done(s.conf.Name+" stopped"))
		if s.state != stateStopping {
			sv.stop(s)
		}
	case "restart", "start":
		if s.pid != 0 && req.Cmd == "start" {
			answer(Response{OK: true, Message: s.conf.Name + " is already running"})
			return
		}
		s.whenStarted = append(s.whenStarted, done(s.conf.Name+" started"))
		if s.pid != 0 {
			s.held, s.restartAfterStop = true, true
			if s.state != stateStopping {
				sv.stop(s)
			}
			return
		}
		s.held = false
		s.stopTimers()
		s.gen++
		s.quickCrashes = 0
		s.state = statePending
		if !sv.depsSatisfied(s) {
			answer(Response{OK: true, Message: s.conf.Name + " waits for its dependencies: " + strings.Join(s.conf.DependsOn, ", ")})
			s.whenStarted = nil
		}
	}
}

func (sv *supervisor) status() []ServiceStatus {
	out := make([]ServiceStatus, 0, len(sv.services))
	for _, s := range sv.services {
		st := ServiceStatus{
			Name: s.conf.Name, Kind: string(s.conf.Kind), Required: s.conf.Required,
			State: string(s.state), PID: s.pid, Restarts: s.restarts, LastExit: s.lastExit,
		}
		if s.pid != 0 {
			st.Uptime = time.Since(s.started).Round(time.Millisecond).Seconds()
		}
		out = append(out, st)
	}
	return out
}

// health is OK when every required oneshot has succeeded and every required
// long-running service is up and ready.
func (sv *supervisor) health() Response {
	var bad []string
	for _, s := range sv.services {
		want := stateUp
		if s.conf.Kind == initconf.Oneshot {
			want = stateDone
		}
		if s.conf.Required && s.state != want {
			bad = append(bad, fmt.Sprintf("%s is %s", s.conf.Name, s.state))
		}
	}
	if sv.shuttingDown {
		bad = append([]string{"init is shutting down"}, bad...)
	}
	if len(bad) > 0 {
		return Response{Error: "unhealthy: " + strings.Join(bad, ", ")}
	}
	return Response{OK: true, Message: "healthy"}
}

// Call sends one request to the init listening on socket and returns its
// answer.
func Call(socket string, req Request, timeout time.Duration) (Response, error) {
	conn, err := net.DialTimeout("unix", socket, timeout)
	if err != nil {
		return Response{}, fmt.Errorf("cannot reach init on %s: %w (is init running, and are you root or in its group?)", socket, err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(timeout))
	if err := json.NewEncoder(conn).Encode(req); err != nil {
		return Response{}, fmt.Errorf("send to init on %s: %w", socket, err)
	}
	var resp Response
	if err := json.NewDecoder(conn).Decode(&resp); err != nil {
		return Response{}, fmt.Errorf("read init's answer on %s: %w", socket, err)
	}
	if !resp.OK && resp.Error == "" {
		return resp, errors.New("init answered without a result")
	}
	return resp, nil
}
