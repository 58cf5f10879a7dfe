package up

import (
	"fmt"
	"sync"
	"time"
)

// proxyKeeper keeps the proxy running for as long as up runs: a proxy that
// dies (a crash, an OOM kill, a signal from someone else) would otherwise
// leave the agent with no egress at all until a person noticed. It restarts
// the proxy with a growing pause (so a proxy that cannot start does not spin),
// says so on up's output each time, and stops it for good when up stops.
type proxyKeeper struct {
	start func() (*child, error)
	say   func(format string, args ...any)
	grace time.Duration

	mu       sync.Mutex
	cur      *child
	stopping bool
	stopped  chan struct{} // closed when watch returns
	wake     chan struct{} // closed by stop, to cut a pause short
}

// keepProxy starts the proxy and watches it.
func keepProxy(start func() (*child, error), say func(string, ...any), grace time.Duration) (*proxyKeeper, error) {
	c, err := start()
	if err != nil {
		return nil, err
	}
	k := &proxyKeeper{start: start, say: say, grace: grace, cur: c, stopped: make(chan struct{}), wake: make(chan struct{})}
	go k.watch()
	return k, nil
}

// pid is the running proxy's process id.
func (k *proxyKeeper) pid() int {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.cur.cmd.Process.Pid
}

// restartPause is how long after its n-th death in a row the proxy is
// started again: at once the first time, then 1 s, 2 s … up to 30 s.
func restartPause(n int) time.Duration {
	if n <= 1 {
		return 0
	}
	return min(time.Duration(1<<min(n-2, 5))*time.Second, 30*time.Second)
}

func (k *proxyKeeper) watch() {
	defer close(k.stopped)
	deaths := 0
	for {
		k.mu.Lock()
		c := k.cur
		k.mu.Unlock()
		started := time.Now()
		<-c.done
		k.mu.Lock()
		stopping := k.stopping
		k.mu.Unlock()
		if stopping {
			return
		}
		if time.Since(started) > time.Minute {
			deaths = 0 // it had been running well: not a crash loop
		}
		deaths++
		pause := restartPause(deaths)
		k.say("the proxy (pid %d) exited unexpectedly (%s); restarting it%s", c.cmd.Process.Pid, exitDescription(c.err), pauseText(pause))
		select {
		case <-time.After(pause):
		case <-k.wake:
			return
		}
		for {
			nc, err := k.start()
			k.mu.Lock()
			if err == nil && k.stopping {
				k.mu.Unlock()
				_ = nc.stop(nc.cmd.Process.Pid, k.grace)
				return
			}
			if err == nil {
				k.cur = nc
				k.mu.Unlock()
				k.say("the proxy is back (pid %d) after %d restart(s)", nc.cmd.Process.Pid, deaths)
				break
			}
			k.mu.Unlock()
			deaths++
			pause = restartPause(deaths)
			k.say("the proxy did not come back (%v); trying again%s", err, pauseText(pause))
			select {
			case <-time.After(pause):
			case <-k.wake:
				return
			}
		}
	}
}

// stop ends the watching and stops the proxy gracefully.
func (k *proxyKeeper) stop() error {
	k.mu.Lock()
	k.stopping = true
	c := k.cur
	k.mu.Unlock()
	close(k.wake)
	err := c.stop(c.cmd.Process.Pid, k.grace)
	<-k.stopped
	return err
}

func exitDescription(err error) string {
	if err == nil {
		return "exit 0"
	}
	return err.Error()
}

func pauseText(d time.Duration) string {
	if d == 0 {
		return ""
	}
	return fmt.Sprintf(" in %s", d)
}
