package initconf

import (
	"strings"

	"go.yaml.in/yaml/v3"
)

// validate checks what spans services: dependencies that exist and form no
// cycle, and settings that only make sense for one kind of service.
func validate(p *parser, f *File) {
	at := func(s *Service) *yaml.Node { return &yaml.Node{Line: s.Line} }
	for _, s := range f.Services {
		for _, d := range s.DependsOn {
			if d == s.Name {
				p.errorf(at(s), "service %q depends on itself", s.Name)
			} else if f.Service(d) == nil {
				p.errorf(at(s), "service %q depends on %q, which is not defined", s.Name, d)
			}
		}
		if s.Kind == Oneshot && s.Ready != nil {
			p.errorf(at(s), "service %q: ready applies to longrun services only (a oneshot is ready when it exits 0)", s.Name)
		}
		if s.Kind == Longrun && s.Timeout != 0 {
			p.errorf(at(s), "service %q: timeout applies to oneshot services only (use ready: timeout for a longrun)", s.Name)
		}
	}
	if cycle := findCycle(f); cycle != nil {
		p.errorf(at(f.Service(cycle[0])), "dependency cycle: %s", strings.Join(cycle, " → "))
	}
}

// findCycle returns one dependency cycle as a path that starts and ends at the
// same service, or nil.
func findCycle(f *File) []string {
	const (
		unseen = iota
		onPath
		finished
	)
	mark := map[string]int{}
	var path []string
	var visit func(name string) []string
	visit = func(name string) []string {
		switch mark[name] {
		case onPath:
			for i, n := range path {
				if n == name {
					return append(append([]string{}, path[i:]...), name)
				}
			}
		case finished:
			return nil
		}
		s := f.Service(name)
		if s == nil {
			return nil
		}
		mark[name] = onPath
		path = append(path, name)
		for _, d := range s.DependsOn {
			if c := visit(d); c != nil {
				return c
			}
		}
		path = path[:len(path)-1]
		mark[name] = finished
		return nil
	}
	for _, s := range f.Services {
		if c := visit(s.Name); c != nil {
			return c
		}
	}
	return nil
}
