package initconf

import (
	"strings"

	"github.com/slapenir/slapenir/internal/yamlcheck"
)

// validate checks what spans services: dependencies that exist and form no
// cycle, and settings that only make sense for one kind of service. Each
// problem is reported on the line of the key at fault.
func validate(d *yamlcheck.Decoder, f *File) {
	for _, s := range f.Services {
		path := "services." + s.Name
		at := func(key string) int {
			if l, ok := d.Lines[path+"."+key]; ok {
				return l
			}
			return s.Line
		}
		for _, dep := range s.DependsOn {
			if dep == s.Name {
				d.Problems.Add(at("depends_on"), "%s.depends_on: a service cannot depend on itself", path)
			} else if f.Service(dep) == nil {
				d.Problems.Add(at("depends_on"), "%s.depends_on: %q is not a service defined here", path, dep)
			}
		}
		if s.Kind == Oneshot && s.Ready != nil {
			d.Problems.Add(at("ready"), "%s.ready: applies to longrun services only (a oneshot is ready when it exits 0)", path)
		}
		if s.Kind == Longrun && s.Timeout != 0 {
			d.Problems.Add(at("timeout"), "%s.timeout: applies to oneshot services only (use ready: timeout for a longrun)", path)
		}
	}
	if cycle := findCycle(f); cycle != nil {
		path := "services." + cycle[0] + ".depends_on"
		d.Problems.Add(d.Lines[path], "%s: dependency cycle: %s", path, strings.Join(cycle, " → "))
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
