package up

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/slapenir/slapenir/internal/supervise"
)

// readyLimit bounds the wait for the agent's services: enrollment may take
// its 2-minute timeout, ollama-verify its minute.
const readyLimit = 3 * time.Minute

// crashLoop is how many restarts before the services are all ready make a
// service's failure up's error rather than something init will get over.
const crashLoop = 2

// settled is how long a long-running service must have been up before it
// counts as ready: one that crashes at once is "up" for a moment between
// its restarts, and a status taken in that moment must not make up say
// everything is ready.
const settled = time.Second

// waitReady asks init (over its control socket) until every service is
// ready: long-running ones up, oneshots done; an optional oneshot may fail,
// and that is reported. A service that keeps crashing, a required one that
// is down for good, or init exiting end the wait with an error naming the
// service, its last lines and the likely cause. progress is called every
// few seconds with what is still awaited.
func waitReady(ctx context.Context, socket string, ag *agentEnv, out *sink, progress func(string)) (notes []string, err error) {
	deadline := time.Now().Add(readyLimit)
	nextProgress := time.Now().Add(5 * time.Second)
	lastWaiting := ""
	for {
		resp, callErr := supervise.Call(socket, supervise.Request{Cmd: "status"}, 2*time.Second)
		if callErr == nil && resp.OK {
			waiting, notes, err := judge(resp.Services, out)
			if err != nil {
				return nil, err
			}
			if len(waiting) == 0 {
				return notes, nil
			}
			lastWaiting = strings.Join(waiting, ", ")
		} else if callErr != nil {
			lastWaiting = "init's control socket (" + callErr.Error() + ")"
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("up: the agent's services are not ready after %s; still waiting for %s", readyLimit, lastWaiting)
		}
		if time.Now().After(nextProgress) {
			progress("waiting for the agent's services: " + lastWaiting)
			nextProgress = time.Now().Add(10 * time.Second)
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-ag.done:
			return nil, fmt.Errorf("up: the agent environment's init exited (%v) before its services were ready; its last lines:\n%s", ag.err, out.tail("init", 15))
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// judge sorts init's status rows into what is still awaited, notes about
// optional services that failed, and a fatal problem.
func judge(services []supervise.ServiceStatus, out *sink) (waiting, notes []string, err error) {
	for _, s := range services {
		switch {
		case s.State == "done" || s.State == "up" && s.Uptime >= settled.Seconds():
		case s.State == "failed" && !s.Required:
			notes = append(notes, fmt.Sprintf("%s failed (%s); it is optional, so the rest runs: see its lines above", s.Name, s.LastExit))
		case s.Restarts >= crashLoop || (s.State == "down" && s.Required):
			lines := out.tail(s.Name, 12)
			// A crash-looper's state at this moment (backoff, or up for
			// the instant between restarts) says nothing: its restarts do.
			what := fmt.Sprintf("keeps crashing (%d restarts", s.Restarts)
			if s.Restarts < crashLoop {
				what = fmt.Sprintf("is %s (%d restart(s)", s.State, s.Restarts)
			}
			return nil, nil, fmt.Errorf("up: the agent's service %s %s, last exit: %s) before everything was ready%s; its last lines:\n%s",
				s.Name, what, orDash(s.LastExit), likelyCause(lines), lines)
		default:
			waiting = append(waiting, fmt.Sprintf("%s (%s)", s.Name, s.State))
		}
	}
	return waiting, notes, nil
}

// likelyCause reads a failing service's lines for the causes seen in
// practice, as a clause for the error message.
func likelyCause(lines string) string {
	l := strings.ToLower(lines)
	switch {
	case strings.Contains(l, "permission denied"):
		return ": likely cause: a file or directory it needs is not accessible to the user it runs as (uid 1000 as root: is the state directory below a directory others may not enter?)"
	case strings.Contains(l, "address already in use"):
		return ": likely cause: another program already listens on its port"
	case strings.Contains(l, "executable file not found") || strings.Contains(l, "no such file or directory"):
		return ": likely cause: a program or file it names is missing"
	case strings.Contains(l, "certificate"):
		return ": likely cause: its certificate (see the lines below)"
	}
	return ""
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// tailLines is how many of the latest output lines the sink keeps for
// error messages.
const tailLines = 400

// tail is the last n lines the sink saw from service name: its own
// "[name] " lines and init's lines about it.
func (s *sink) tail(name string, n int) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	own, about := "["+name+"] ", "[init] "+name+" "
	var picked []string
	for i := len(s.recent) - 1; i >= 0 && len(picked) < n; i-- {
		if l := s.recent[i]; strings.HasPrefix(l, own) || strings.HasPrefix(l, about) || (name == "init" && strings.HasPrefix(l, "[init] ")) {
			picked = append(picked, "    "+l)
		}
	}
	slices.Reverse(picked)
	if len(picked) == 0 {
		return "    (none)"
	}
	return strings.Join(picked, "\n")
}
