package initconf

import (
	"syscall"
	"time"
)

// Kind says whether a service runs once to completion or stays up.
type Kind string

const (
	// Oneshot runs to completion; later services wait for it to succeed.
	Oneshot Kind = "oneshot"
	// Longrun stays up and is restarted by the restart policy.
	Longrun Kind = "longrun"
)

// RestartMode selects which exits of a long-running service lead to a restart.
type RestartMode string

const (
	// RestartSeed is the seed's policy: exit 0 and SIGTERM/SIGINT stop cleanly,
	// exit 1–99 and any other signal restart, exit 100+ is fatal.
	RestartSeed RestartMode = "seed"
	// RestartAlways restarts on every exit except 100+ (still fatal).
	RestartAlways RestartMode = "always"
	// RestartNever leaves the service down after any exit; 100+ is still fatal.
	RestartNever RestartMode = "never"
)

// Defaults applied to every service that does not set the field.
const (
	// DefaultUser runs a service that names no user; where the image has no
	// such user, init falls back to DefaultUID:DefaultUID.
	DefaultUser          = "agent"
	DefaultUID           = 1000
	DefaultStopGrace     = 3 * time.Second
	DefaultReadyTimeout  = 30 * time.Second
	DefaultReadyInterval = 50 * time.Millisecond
	DefaultBackoffStart  = 100 * time.Millisecond
	DefaultBackoffMax    = 10 * time.Second
	DefaultResetAfter    = 10 * time.Second
)

// File is a parsed, validated service file.
type File struct {
	Path string
	// Services in the order the file lists them.
	Services []*Service
}

// Service is one entry of the file's services mapping.
type Service struct {
	Name string
	Line int // line of the service's name in the file, for later messages

	Kind    Kind
	Command []string
	// Required: for a oneshot, failure stops the container; for a longrun,
	// `ctl health` reports unhealthy unless it is up and ready.
	Required  bool
	DependsOn []string

	// User is a user name or a numeric "uid[:gid]"; empty means DefaultUser.
	// Group and Groups are names
	// or numeric gids. Resolved against the system by package supervise.
	User       string
	Group      string
	Groups     []string
	Privileged bool // keeps CAP_NET_ADMIN

	Env []string // KEY=VALUE, in file order, added to the container's environment
	Dir string

	Ready *Readiness
	// Timeout bounds a oneshot's run time (0: no limit).
	Timeout time.Duration

	StopSignal syscall.Signal
	StopGrace  time.Duration
	ForwardHUP bool

	Restart Restart
}

// Readiness says how init learns a long-running service is ready. Exactly one
// of TCP, HTTP, Command and NotifyFD is set.
type Readiness struct {
	TCP      string   // host:port accepting connections
	HTTP     string   // URL answering 2xx/3xx to GET
	Command  []string // exits 0 when ready
	NotifyFD int      // the service writes a line to this fd when ready
	Timeout  time.Duration
	Interval time.Duration
}

// Restart is a long-running service's restart policy and crash-loop backoff.
type Restart struct {
	Mode RestartMode
	// The first restart after a stable run is immediate; each further quick
	// crash doubles the delay from BackoffStart up to BackoffMax.
	BackoffStart time.Duration
	BackoffMax   time.Duration
	// ResetAfter is how long a run must last to count as stable again.
	ResetAfter time.Duration
}

// Service returns the named service, or nil.
func (f *File) Service(name string) *Service {
	for _, s := range f.Services {
		if s.Name == name {
			return s
		}
	}
	return nil
}
