package initconf

import (
	"errors"
	"os"
	"testing"

	"github.com/slapenir/slapenir/internal/yamlcheck"
)

// FuzzParse checks that no service file makes Parse panic, and that what it
// accepts is a file init can run: services with names, commands and one
// probe each, or else a non-empty report.
func FuzzParse(f *testing.F) {
	shipped, err := os.ReadFile("../../agent/agent-services.yaml")
	if err != nil {
		f.Fatal(err)
	}
	f.Add(shipped)
	f.Add([]byte("services:\n  a:\n    command: x\n    ready: {notify_fd: 3}\n    env: {A: &v b, B: *v}\n"))
	f.Add([]byte("services: &s\n  a: *s\n"))
	f.Add([]byte("services: {}\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		file, err := Parse("f.yaml", data)
		if err != nil {
			var probs *yamlcheck.Problems
			if !errors.As(err, &probs) || len(probs.List) == 0 || file != nil {
				t.Fatalf("Parse returned %v (%T) with file %v", err, err, file)
			}
			return
		}
		if len(file.Services) == 0 {
			t.Fatal("Parse accepted a file without services")
		}
		for _, s := range file.Services {
			if !serviceName.MatchString(s.Name) || len(s.Command) == 0 || s.Command[0] == "" {
				t.Fatalf("Parse accepted service %q with command %q", s.Name, s.Command)
			}
			if r := s.Ready; r != nil && r.probes() != 1 {
				t.Fatalf("Parse accepted service %q with %d probes: %+v", s.Name, r.probes(), r)
			}
			if s.Restart.BackoffMax < s.Restart.BackoffStart || s.StopGrace < 0 {
				t.Fatalf("Parse accepted service %q with restart %+v, stop_grace %s", s.Name, s.Restart, s.StopGrace)
			}
		}
	})
}
