package initconf

import (
	"fmt"
	"maps"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

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
// line order), as check-config reports the proxy's.
func Parse(name string, data []byte) (*File, error) {
	p := &parser{probs: yamlcheck.Problems{File: name}}
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		// yaml's own messages already say "line N".
		p.probs.Add(0, "%v", err)
		return nil, p.probs.OrNil()
	}
	f := &File{Path: name}
	if len(doc.Content) == 0 {
		p.probs.Add(0, "empty service file (want a top-level \"services:\" mapping)")
		return nil, p.probs.OrNil()
	}
	root := doc.Content[0]
	if p.expect(root, yaml.MappingNode, "the top level") {
		p.fields(root, "", map[string]func(*yaml.Node){
			"services": func(v *yaml.Node) { f.Services = p.services(v) },
		})
	}
	if f.Services == nil && len(p.probs.List) == 0 {
		p.errorf(root, "no services defined (want a top-level \"services:\" mapping)")
	}
	validate(p, f)
	if err := p.probs.OrNil(); err != nil {
		return nil, err
	}
	return f, nil
}

type parser struct {
	probs yamlcheck.Problems
}

func (p *parser) errorf(n *yaml.Node, format string, args ...any) {
	p.probs.Add(n.Line, format, args...)
}

var kindNames = map[yaml.Kind]string{
	yaml.MappingNode:  "a mapping",
	yaml.SequenceNode: "a list",
	yaml.ScalarNode:   "a single value",
	yaml.AliasNode:    "an alias",
}

func (p *parser) expect(n *yaml.Node, kind yaml.Kind, what string) bool {
	if n.Kind != kind {
		p.errorf(n, "%s must be %s, not %s", what, kindNames[kind], kindNames[n.Kind])
		return false
	}
	return true
}

// fields walks the mapping at path (the same walk as the proxy
// configuration's: yamlcheck.Keys), rejecting keys it does not know so that
// typos are errors instead of silently ignored settings.
func (p *parser) fields(m *yaml.Node, path string, known map[string]func(*yaml.Node)) {
	yamlcheck.Keys(&p.probs, path, m, slices.Sorted(maps.Keys(known)), func(key string, _, v *yaml.Node) {
		known[key](v)
	})
}

var serviceName = regexp.MustCompile(`^[a-z0-9][a-z0-9_.-]{0,62}$`)

func (p *parser) services(m *yaml.Node) []*Service {
	if !p.expect(m, yaml.MappingNode, "services") {
		return nil
	}
	var out []*Service
	seen := map[string]bool{}
	for i := 0; i+1 < len(m.Content); i += 2 {
		k, v := m.Content[i], m.Content[i+1]
		if !serviceName.MatchString(k.Value) {
			p.errorf(k, "service name %q is invalid (use lower-case letters, digits, '-', '_' or '.')", k.Value)
			continue
		}
		if k.Value == "init" {
			p.errorf(k, "service name \"init\" is reserved for init's own log lines")
			continue
		}
		if seen[k.Value] {
			p.errorf(k, "service %q defined twice", k.Value)
			continue
		}
		seen[k.Value] = true
		out = append(out, p.service(k, v))
	}
	return out
}

func (p *parser) service(k, v *yaml.Node) *Service {
	s := &Service{
		Name:      k.Value,
		Line:      k.Line,
		Kind:      Longrun,
		Required:  true,
		StopGrace: DefaultStopGrace,
		Restart: Restart{
			Mode:         RestartSeed,
			BackoffStart: DefaultBackoffStart,
			BackoffMax:   DefaultBackoffMax,
			ResetAfter:   DefaultResetAfter,
		},
	}
	where := fmt.Sprintf("service %q: ", s.Name)
	if !p.expect(v, yaml.MappingNode, "service "+strconv.Quote(s.Name)) {
		return s
	}
	p.fields(v, "services."+s.Name, map[string]func(*yaml.Node){
		"type": func(n *yaml.Node) {
			switch Kind(p.str(n, where+"type")) {
			case Oneshot:
				s.Kind = Oneshot
			case Longrun:
				s.Kind = Longrun
			default:
				p.errorf(n, "%stype %q is unknown (want oneshot or longrun)", where, n.Value)
			}
		},
		"command":    func(n *yaml.Node) { s.Command = p.command(n, where+"command") },
		"required":   func(n *yaml.Node) { s.Required = p.boolean(n, where+"required") },
		"depends_on": func(n *yaml.Node) { s.DependsOn = p.strList(n, where+"depends_on") },
		"user":       func(n *yaml.Node) { s.User = p.str(n, where+"user") },
		"group":      func(n *yaml.Node) { s.Group = p.str(n, where+"group") },
		"groups":     func(n *yaml.Node) { s.Groups = p.strList(n, where+"groups") },
		"privileged": func(n *yaml.Node) { s.Privileged = p.boolean(n, where+"privileged") },
		"env":        func(n *yaml.Node) { s.Env = p.env(n, where+"env") },
		"workdir":    func(n *yaml.Node) { s.Dir = p.str(n, where+"workdir") },
		"ready":      func(n *yaml.Node) { s.Ready = p.ready(n, where+"ready: ", "services."+s.Name+".ready") },
		"timeout":    func(n *yaml.Node) { s.Timeout = p.duration(n, where+"timeout") },
		"stop_signal": func(n *yaml.Node) {
			s.StopSignal = p.signal(n, where+"stop_signal")
		},
		"stop_grace":  func(n *yaml.Node) { s.StopGrace = p.duration(n, where+"stop_grace") },
		"forward_hup": func(n *yaml.Node) { s.ForwardHUP = p.boolean(n, where+"forward_hup") },
		"restart":     func(n *yaml.Node) { p.restart(n, where+"restart: ", "services."+s.Name+".restart", &s.Restart) },
	})
	if s.StopSignal == 0 {
		s.StopSignal = signalByName["TERM"]
	}
	if s.Command == nil {
		p.errorf(k, "%scommand is missing", where)
	}
	return s
}

func (p *parser) ready(n *yaml.Node, where, path string) *Readiness {
	r := &Readiness{Timeout: DefaultReadyTimeout, Interval: DefaultReadyInterval}
	if !p.expect(n, yaml.MappingNode, strings.TrimSuffix(where, ": ")) {
		return r
	}
	probes := 0
	p.fields(n, path, map[string]func(*yaml.Node){
		"tcp":     func(v *yaml.Node) { r.TCP = p.str(v, where+"tcp"); probes++ },
		"http":    func(v *yaml.Node) { r.HTTP = p.str(v, where+"http"); probes++ },
		"command": func(v *yaml.Node) { r.Command = p.command(v, where+"command"); probes++ },
		"notify_fd": func(v *yaml.Node) {
			probes++
			fd, err := strconv.Atoi(v.Value)
			if v.Kind != yaml.ScalarNode || err != nil || fd < 3 || fd > 64 {
				p.errorf(v, "%snotify_fd %q must be a file descriptor number from 3 to 64", where, v.Value)
				return
			}
			r.NotifyFD = fd
		},
		"timeout":  func(v *yaml.Node) { r.Timeout = p.duration(v, where+"timeout") },
		"interval": func(v *yaml.Node) { r.Interval = p.duration(v, where+"interval") },
	})
	if probes != 1 {
		p.errorf(n, "%sgive exactly one of tcp, http, command or notify_fd (found %d)", where, probes)
	}
	if r.HTTP != "" && !strings.HasPrefix(r.HTTP, "http://") && !strings.HasPrefix(r.HTTP, "https://") {
		p.errorf(n, "%shttp %q must be an http:// or https:// URL", where, r.HTTP)
	}
	return r
}

func (p *parser) restart(n *yaml.Node, where, path string, r *Restart) {
	if !p.expect(n, yaml.MappingNode, strings.TrimSuffix(where, ": ")) {
		return
	}
	p.fields(n, path, map[string]func(*yaml.Node){
		"policy": func(v *yaml.Node) {
			switch m := RestartMode(p.str(v, where+"policy")); m {
			case RestartSeed, RestartAlways, RestartNever:
				r.Mode = m
			default:
				p.errorf(v, "%spolicy %q is unknown (want seed, always or never)", where, v.Value)
			}
		},
		"backoff_start": func(v *yaml.Node) { r.BackoffStart = p.duration(v, where+"backoff_start") },
		"backoff_max":   func(v *yaml.Node) { r.BackoffMax = p.duration(v, where+"backoff_max") },
		"reset_after":   func(v *yaml.Node) { r.ResetAfter = p.duration(v, where+"reset_after") },
	})
	if r.BackoffMax < r.BackoffStart {
		p.errorf(n, "%sbackoff_max %s is below backoff_start %s", where, r.BackoffMax, r.BackoffStart)
	}
}

func (p *parser) str(n *yaml.Node, what string) string {
	if !p.expect(n, yaml.ScalarNode, what) {
		return ""
	}
	return n.Value
}

func (p *parser) boolean(n *yaml.Node, what string) bool {
	if !p.expect(n, yaml.ScalarNode, what) {
		return false
	}
	switch n.Value {
	case "true", "yes", "on":
		return true
	case "false", "no", "off":
		return false
	}
	p.errorf(n, "%s %q must be true or false", what, n.Value)
	return false
}

func (p *parser) duration(n *yaml.Node, what string) time.Duration {
	if !p.expect(n, yaml.ScalarNode, what) {
		return 0
	}
	d, err := time.ParseDuration(n.Value)
	if err != nil || d < 0 {
		p.errorf(n, "%s %q is not a duration (write e.g. 500ms, 3s, 1m)", what, n.Value)
		return 0
	}
	return d
}

func (p *parser) strList(n *yaml.Node, what string) []string {
	if n.Kind == yaml.ScalarNode {
		return []string{n.Value}
	}
	if !p.expect(n, yaml.SequenceNode, what) {
		return nil
	}
	out := make([]string, 0, len(n.Content))
	for _, e := range n.Content {
		out = append(out, p.str(e, what+" item"))
	}
	return out
}

// command accepts a list (exact argv) or a string split on white space; shell
// syntax needs an explicit [sh, -c, "..."].
func (p *parser) command(n *yaml.Node, what string) []string {
	var argv []string
	if n.Kind == yaml.ScalarNode {
		argv = strings.Fields(n.Value)
	} else {
		argv = p.strList(n, what)
	}
	if len(argv) == 0 || argv[0] == "" {
		p.errorf(n, "%s is empty", what)
		return nil
	}
	return argv
}

var envName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

func (p *parser) env(n *yaml.Node, what string) []string {
	if !p.expect(n, yaml.MappingNode, what) {
		return nil
	}
	var out []string
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if !envName.MatchString(k.Value) {
			p.errorf(k, "%s: %q is not a valid variable name", what, k.Value)
			continue
		}
		out = append(out, k.Value+"="+p.str(v, what+" "+k.Value))
	}
	return out
}

var signalByName = map[string]syscall.Signal{
	"TERM": 15, "INT": 2, "HUP": 1, "QUIT": 3, "KILL": 9, "USR1": 10, "USR2": 12,
}

func (p *parser) signal(n *yaml.Node, what string) syscall.Signal {
	name := strings.TrimPrefix(strings.ToUpper(p.str(n, what)), "SIG")
	if sig, ok := signalByName[name]; ok {
		return sig
	}
	p.errorf(n, "%s %q is not a supported signal (want TERM, INT, HUP, QUIT, KILL, USR1 or USR2)", what, n.Value)
	return 0
}
