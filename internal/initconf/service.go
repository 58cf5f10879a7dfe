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
	Path     string
	Services Services `yaml:"services"`
}

// Services are the file's services in the order it lists them.
type Services []*Service

// Argv is a command: a list (the exact argv) or a string split on white
// space.
type Argv []string

// Names is one name or a list of them (services, groups).
type Names []string

// Env is KEY=VALUE pairs in the file's order.
type Env []string

// Signal is a stop signal, written by name (TERM or SIGTERM).
type Signal syscall.Signal

// Service is one entry of the file's services mapping.
type Service struct {
	Name string
	Line int // line of the service's name in the file, for later messages

	Kind    Kind `yaml:"type"`
	Command Argv `yaml:"command"`
	// Required: for a oneshot, failure stops the container; for a longrun,
	// `ctl health` reports unhealthy unless it is up and ready.
	Required  bool  `yaml:"required"`
	DependsOn Names `yaml:"depends_on"`

	// User is a user name or a numeric "uid[:gid]"; empty means DefaultUser.
	// Group and Groups are names
	// or numeric gids. Resolved against the system by package supervise.
	User       string `yaml:"user"`
	Group      string `yaml:"group"`
	Groups     Names  `yaml:"groups"`
	Privileged bool   `yaml:"privileged"` // keeps CAP_NET_ADMIN

	Env Env    `yaml:"env"` // added to the container's environment
	Dir string `yaml:"workdir"`

	Ready *Readiness `yaml:"ready"`
	// Timeout bounds a oneshot's run time (0: no limit).
	Timeout time.Duration `yaml:"timeout"`

	StopSignal Signal        `yaml:"stop_signal"`
	StopGrace  time.Duration `yaml:"stop_grace"`
	ForwardHUP bool          `yaml:"forward_hup"`

	Restart Restart `yaml:"restart"`
}

// Readiness says how init learns a long-running service is ready. Exactly one
// of TCP, HTTP, Command and NotifyFD is set.
type Readiness struct {
	TCP      string        `yaml:"tcp"`       // host:port accepting connections
	HTTP     string        `yaml:"http"`      // URL answering 2xx/3xx to GET
	Command  Argv          `yaml:"command"`   // exits 0 when ready
	NotifyFD int           `yaml:"notify_fd"` // the service writes a line to this fd when ready
	Timeout  time.Duration `yaml:"timeout"`
	Interval time.Duration `yaml:"interval"`
}

// Restart is a long-running service's restart policy and crash-loop backoff.
type Restart struct {
	Mode RestartMode `yaml:"policy"`
	// The first restart after a stable run is immediate; each further quick
	// crash doubles the delay from BackoffStart up to BackoffMax.
	BackoffStart time.Duration `yaml:"backoff_start"`
	BackoffMax   time.Duration `yaml:"backoff_max"`
	// ResetAfter is how long a run must last to count as stable again.
	ResetAfter time.Duration `yaml:"reset_after"`
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

// probes counts the probes set; a valid file sets exactly one.
func (r *Readiness) probes() int {
	n := 0
	for _, set := range []bool{r.TCP != "", r.HTTP != "", r.Command != nil, r.NotifyFD != 0} {
		if set {
			n++
		}
	}
	return n
}
