package initconf

import (
	"errors"
	"fmt"
	"os"
	"regexp"
	"strings"
	"syscall"

	"github.com/slapenir/slapenir/internal/didyoumean"
	"github.com/slapenir/slapenir/internal/yamlcheck"
	"go.yaml.in/yaml/v3"
)

// Load reads and parses the service file at path.
func Load(path string) (*File, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("init: cannot read service file: %w", err)
	}
	return Parse(path, data)
}

// Parse parses a service file. name is used in error messages only. Every
// problem found is reported, as a *yamlcheck.Problems ("name:line: …", in
// line order), decoded by the same walk as the proxy's configuration, so
// check-config and init --check report alike.
func Parse(name string, data []byte) (*File, error) {
	d := &yamlcheck.Decoder{Problems: yamlcheck.Problems{File: name}, Lines: map[string]int{}}
	f := &File{Path: name}
	top := yamlcheck.Document(&d.Problems, data)
	switch {
	case top != nil:
		d.Decode("", top, f)
		if len(f.Services) == 0 && len(d.Problems.List) == 0 {
			d.Add(top, "no services defined (want a top-level \"services:\" mapping)")
		}
		validate(d, f)
	case len(d.Problems.List) == 0:
		d.Problems.Add(0, "empty service file (want a top-level \"services:\" mapping)")
	}
	if err := d.Problems.OrNil(); err != nil {
		return nil, err
	}
	return f, nil
}

var serviceName = regexp.MustCompile(`^[a-z0-9][a-z0-9_.-]{0,62}$`)

// DecodeNode reads the services mapping in the file's order, which is the
// order services start in when nothing else decides.
func (ss *Services) DecodeNode(d *yamlcheck.Decoder, path string, n *yaml.Node) {
	if !d.Expect(path, n, yaml.MappingNode) {
		return
	}
	*ss = Services{}
	yamlcheck.Pairs(&d.Problems, path, n, func(name string, k, v *yaml.Node) {
		switch {
		case !serviceName.MatchString(name):
			d.Add(k, "%s: service name %q is invalid (use lower-case letters, digits, '-', '_' or '.')", path, name)
		case name == "init":
			d.Add(k, "%s: service name \"init\" is reserved for init's own log lines", path)
		default:
			*ss = append(*ss, decodeService(d, path+"."+name, k, v))
		}
	})
}

func decodeService(d *yamlcheck.Decoder, path string, k, v *yaml.Node) *Service {
	v = yamlcheck.Resolve(v)
	s := &Service{
		Name:       k.Value,
		Line:       k.Line,
		Kind:       Longrun,
		Required:   true,
		StopSignal: Signal(syscall.SIGTERM),
		StopGrace:  DefaultStopGrace,
		Restart: Restart{
			Mode:         RestartSeed,
			BackoffStart: DefaultBackoffStart,
			BackoffMax:   DefaultBackoffMax,
			ResetAfter:   DefaultResetAfter,
		},
	}
	if !d.Expect(path, v, yaml.MappingNode) {
		return s
	}
	d.Decode(path, v, s)
	if s.Command == nil {
		d.Add(k, "%s.command: missing (every service names the program it runs)", path)
	}
	return s
}

// DecodeNode fills the defaults of the keys left out, then checks that
// exactly one probe is given.
func (r *Readiness) DecodeNode(d *yamlcheck.Decoder, path string, n *yaml.Node) {
	*r = Readiness{Timeout: DefaultReadyTimeout, Interval: DefaultReadyInterval}
	d.Fields(path, n, r)
	if n.Kind != yaml.MappingNode {
		return
	}
	if found := r.probes(); found != 1 {
		d.Add(n, "%s: give exactly one of tcp, http, command or notify_fd (found %d)", path, found)
	}
	if r.HTTP != "" && !strings.HasPrefix(r.HTTP, "http://") && !strings.HasPrefix(r.HTTP, "https://") {
		d.Problems.Add(d.Lines[path+".http"], "%s.http: want an http:// or https:// URL, got %q", path, r.HTTP)
	}
	if _, set := d.Lines[path+".notify_fd"]; set && (r.NotifyFD < 3 || r.NotifyFD > 64) {
		d.Problems.Add(d.Lines[path+".notify_fd"], "%s.notify_fd: want a file descriptor number from 3 to 64, got %d", path, r.NotifyFD)
	}
}

// DecodeNode checks that the backoff grows.
func (r *Restart) DecodeNode(d *yamlcheck.Decoder, path string, n *yaml.Node) {
	d.Fields(path, n, r)
	if r.BackoffMax < r.BackoffStart {
		d.Add(n, "%s.backoff_max: %s is below backoff_start %s", path, r.BackoffMax, r.BackoffStart)
	}
}

// UnmarshalYAML implements yaml.Unmarshaler.
func (k *Kind) UnmarshalYAML(n *yaml.Node) error {
	return oneOf(n, (*string)(k), string(Oneshot), string(Longrun))
}

// UnmarshalYAML implements yaml.Unmarshaler.
func (m *RestartMode) UnmarshalYAML(n *yaml.Node) error {
	return oneOf(n, (*string)(m), string(RestartSeed), string(RestartAlways), string(RestartNever))
}

// oneOf sets out to n's value when it is one of allowed; else the error
// is the proxy configuration's, with its suggestion for a typo.
func oneOf(n *yaml.Node, out *string, allowed ...string) error {
	if n.Kind != yaml.ScalarNode {
		return fmt.Errorf("want %s, got %s", strings.Join(allowed, " or "), yamlcheck.Describe(n))
	}
	if msg := didyoumean.OneOf(n.Value, allowed...); msg != "" {
		return errors.New(msg)
	}
	*out = n.Value
	return nil
}

// UnmarshalYAML takes a list (the exact argv) or a string split on white
// space; shell syntax needs an explicit [sh, -c, "..."].
func (a *Argv) UnmarshalYAML(n *yaml.Node) error {
	var argv Names
	if n.Kind == yaml.ScalarNode {
		argv = strings.Fields(n.Value)
	} else if err := argv.UnmarshalYAML(n); err != nil {
		return err
	}
	if len(argv) == 0 || argv[0] == "" {
		return fmt.Errorf("empty: name the program to run")
	}
	*a = Argv(argv)
	return nil
}

// UnmarshalYAML takes one name or a list of them.
func (ns *Names) UnmarshalYAML(n *yaml.Node) error {
	n = yamlcheck.Resolve(n)
	if n.Kind == yaml.ScalarNode {
		*ns = Names{n.Value}
		return nil
	}
	if n.Kind != yaml.SequenceNode {
		return fmt.Errorf("want a name or a list of them, got %s", yamlcheck.Describe(n))
	}
	out := make(Names, 0, len(n.Content))
	for _, e := range n.Content {
		if e = yamlcheck.Resolve(e); e.Kind != yaml.ScalarNode {
			return fmt.Errorf("want a name or a list of them, got %s in the list", yamlcheck.Describe(e))
		}
		out = append(out, e.Value)
	}
	*ns = out
	return nil
}

var envName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// DecodeNode reads the variables in the file's order, each name checked
// on its own line.
func (e *Env) DecodeNode(d *yamlcheck.Decoder, path string, n *yaml.Node) {
	if !d.Expect(path, n, yaml.MappingNode) {
		return
	}
	*e = Env{}
	yamlcheck.Pairs(&d.Problems, path, n, func(name string, k, v *yaml.Node) {
		if !envName.MatchString(name) {
			d.Add(k, "%s: %q is not a valid variable name", path, name)
			return
		}
		var value string
		d.Decode(path+"."+name, v, &value)
		*e = append(*e, name+"="+value)
	})
}

// signalNames are the stop signals a service may name, in the order
// messages list them.
var signalNames = []string{"TERM", "INT", "HUP", "QUIT", "KILL", "USR1", "USR2"}

var signalByName = map[string]syscall.Signal{
	"TERM": syscall.SIGTERM, "INT": syscall.SIGINT, "HUP": syscall.SIGHUP, "QUIT": syscall.SIGQUIT,
	"KILL": syscall.SIGKILL, "USR1": syscall.SIGUSR1, "USR2": syscall.SIGUSR2,
}

// UnmarshalYAML takes a signal's name, in any case, with or without "SIG".
func (s *Signal) UnmarshalYAML(n *yaml.Node) error {
	name := *n
	name.Value = strings.TrimPrefix(strings.ToUpper(n.Value), "SIG")
	var got string
	if err := oneOf(&name, &got, signalNames...); err != nil {
		return err
	}
	*s = Signal(signalByName[got])
	return nil
}

// String is the signal's name ("terminated").
func (s Signal) String() string { return syscall.Signal(s).String() }
