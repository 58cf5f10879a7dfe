package enforce

import (
	"fmt"
	"os"
	"runtime"

	"golang.org/x/sys/unix"
)

// inNetNS runs fn on an OS thread that has joined the target's network
// namespace, so the sockets fn opens live there. The thread is never given
// back to the Go scheduler (no UnlockOSThread): it exits with the goroutine
// instead of carrying the namespace into unrelated code.
func inNetNS(target Target, fn func() error) error {
	if target.NetNS == "" {
		return fn()
	}
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		ns, err := os.Open(target.NetNS)
		if err != nil {
			errc <- fmt.Errorf("enforce: open %s: %w", target, err)
			return
		}
		defer ns.Close()
		if err := unix.Setns(int(ns.Fd()), unix.CLONE_NEWNET); err != nil {
			errc <- fmt.Errorf("enforce: join %s: %w (needs CAP_SYS_ADMIN)", target, err)
			return
		}
		errc <- fn()
	}()
	return <-errc
}
