package supervise

import (
	"flag"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// ExecServiceFlag is the hidden first argument of `slapenir init` that turns
// the process into the exec wrapper below.
const ExecServiceFlag = "--exec-service"

// ExecService is what init re-executes itself as for every service process:
// still root, it drops the capability bounding set, switches to the service's
// user, groups and capabilities, sets no_new_privs and execs the command.
// fork/exec offers no hook for no_new_privs or the bounding set, hence the
// extra exec. It returns only on failure, with an exit code (126: cannot run,
// 127: not found) whose message goes to the service's own log.
func ExecService(args []string) int {
	fs := flag.NewFlagSet("exec-service", flag.ContinueOnError)
	uid := fs.Int("uid", -1, "")
	gid := fs.Int("gid", -1, "")
	groups := fs.String("groups", "", "")
	keepNetAdmin := fs.Bool("net-admin", false, "")
	dir := fs.String("dir", "", "")
	if err := fs.Parse(args); err != nil || fs.NArg() == 0 {
		fmt.Fprintln(os.Stderr, "slapenir init --exec-service: internal use only, started by init for each service")
		return 126
	}
	argv := fs.Args()
	path, err := exec.LookPath(argv[0])
	if err != nil {
		fmt.Fprintf(os.Stderr, "slapenir init: command %q not found in PATH=%q: install it or give its absolute path\n", argv[0], os.Getenv("PATH"))
		return 127
	}
	// Capabilities, the bounding set and no_new_privs belong to a thread,
	// and execve keeps the calling thread's: do all of it on one thread.
	runtime.LockOSThread()
	if err := dropPrivileges(*uid, *gid, *groups, *keepNetAdmin); err != nil {
		fmt.Fprintf(os.Stderr, "slapenir init: cannot drop privileges for %q: %v\n", argv[0], err)
		return 126
	}
	if *dir != "" {
		if err := os.Chdir(*dir); err != nil {
			fmt.Fprintf(os.Stderr, "slapenir init: cannot enter workdir: %v (create it, or fix workdir:)\n", err)
			return 126
		}
	}
	err = syscall.Exec(path, argv, os.Environ())
	fmt.Fprintf(os.Stderr, "slapenir init: cannot execute %q: %v\n", path, err)
	return 126
}

func dropPrivileges(uid, gid int, groups string, keepNetAdmin bool) error {
	if os.Geteuid() == 0 {
		last := lastCap()
		for c := 0; c <= last; c++ {
			if keepNetAdmin && c == unix.CAP_NET_ADMIN {
				continue
			}
			if err := unix.Prctl(unix.PR_CAPBSET_DROP, uintptr(c), 0, 0, 0); err != nil && err != unix.EINVAL {
				return fmt.Errorf("drop capability %d from the bounding set: %w", c, err)
			}
		}
		if uid >= 0 {
			if keepNetAdmin && uid != 0 {
				if err := unix.Prctl(unix.PR_SET_KEEPCAPS, 1, 0, 0, 0); err != nil {
					return fmt.Errorf("keep capabilities across setuid: %w", err)
				}
			}
			var gids []int
			for _, g := range strings.Split(groups, ",") {
				if n, err := strconv.Atoi(g); err == nil {
					gids = append(gids, n)
				}
			}
			// syscall's Setgroups/Setgid/Setuid change every thread of the process.
			if err := syscall.Setgroups(gids); err != nil {
				return fmt.Errorf("setgroups %v: %w", gids, err)
			}
			if err := syscall.Setgid(gid); err != nil {
				return fmt.Errorf("setgid %d: %w", gid, err)
			}
			if err := syscall.Setuid(uid); err != nil {
				return fmt.Errorf("setuid %d: %w", uid, err)
			}
		}
		var keep uint32
		if keepNetAdmin {
			keep = 1 << unix.CAP_NET_ADMIN
		}
		hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
		data := [2]unix.CapUserData{{Effective: keep, Permitted: keep, Inheritable: keep}}
		if err := unix.Capset(&hdr, &data[0]); err != nil {
			return fmt.Errorf("capset: %w", err)
		}
		if keepNetAdmin {
			// Ambient, so that a non-root user keeps it across execve.
			if err := unix.Prctl(unix.PR_CAP_AMBIENT, unix.PR_CAP_AMBIENT_RAISE, unix.CAP_NET_ADMIN, 0, 0); err != nil {
				return fmt.Errorf("raise ambient CAP_NET_ADMIN: %w", err)
			}
		}
	}
	if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
		return fmt.Errorf("set no_new_privs: %w", err)
	}
	return nil
}

// lastCap is the highest capability the running kernel knows.
func lastCap() int {
	b, err := os.ReadFile("/proc/sys/kernel/cap_last_cap")
	if err != nil {
		return 63
	}
	n, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		return 63
	}
	return n
}
