package config

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// FuzzParse checks that no input makes Parse panic or return anything but
// a valid *Config or a non-empty *Problems.
func FuzzParse(f *testing.F) {
	files, _ := filepath.Glob(filepath.Join("testdata", "*.yaml"))
	files = append(files, filepath.Join("..", "..", "configs", "proxy.example.yaml"))
	for _, name := range files {
		data, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Add([]byte("policy: &x\n  allow: *x\n"))
	f.Add([]byte("a: &a [*a, *a]\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := Parse("f.yaml", data)
		if err != nil {
			var probs *Problems
			if !errors.As(err, &probs) || len(probs.List) == 0 || c != nil {
				t.Fatalf("Parse returned %v (%T) with config %v", err, err, c)
			}
			return
		}
		if verr := c.Validate(); verr != nil {
			t.Fatalf("Parse accepted a config that does not validate: %v", verr)
		}
	})
}
