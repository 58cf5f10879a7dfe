package aider_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/slapenir/slapenir/internal/ollama/aider"
)

const model = "qwen2.5-coder:7b"

type setting struct {
	Name        string         `yaml:"name"`
	ExtraParams map[string]any `yaml:"extra_params"`
}

func parse(t *testing.T, path string) []setting {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var list []setting
	if err := yaml.Unmarshal(b, &list); err != nil {
		t.Fatalf("%s is not valid YAML after EnsureSettings: %v\n%s", path, err, b)
	}
	return list
}

// assertHasOurEntries checks both names of the model get num_ctx 16384.
func assertHasOurEntries(t *testing.T, list []setting) {
	t.Helper()
	for _, name := range aider.ModelNames(model) {
		found := false
		for _, s := range list {
			if s.Name == name {
				found = true
				if s.ExtraParams["num_ctx"] != aider.NumCtx {
					t.Errorf("entry %s has extra_params %v, want num_ctx %d", name, s.ExtraParams, aider.NumCtx)
				}
			}
		}
		if !found {
			t.Errorf("no entry for %s in %+v", name, list)
		}
	}
}

func TestEnsureSettingsCreatesFile(t *testing.T) {
	path := aider.SettingsPath(t.TempDir())
	change, err := aider.EnsureSettings(path, model)
	if err != nil || change != aider.SettingsCreated {
		t.Fatalf("EnsureSettings = %v, %v; want created", change, err)
	}
	list := parse(t, path)
	if len(list) != 2 {
		t.Errorf("new file has %d entries, want 2", len(list))
	}
	assertHasOurEntries(t, list)
	if fi, _ := os.Stat(path); fi.Mode().Perm() != 0o644 {
		t.Errorf("mode %v, want 0644", fi.Mode().Perm())
	}

	// Running again finds its own entries and changes nothing.
	before, _ := os.ReadFile(path)
	change, err = aider.EnsureSettings(path, model)
	after, _ := os.ReadFile(path)
	if err != nil || change != aider.SettingsKept || string(after) != string(before) {
		t.Errorf("second run: %v, %v, file changed %v; want kept and unchanged", change, err, string(after) != string(before))
	}
	leftovers, _ := filepath.Glob(filepath.Join(filepath.Dir(path), ".*.tmp-*"))
	if len(leftovers) != 0 {
		t.Errorf("temporary files left behind: %v", leftovers)
	}
}

func TestEnsureSettingsAppendsWithoutReformatting(t *testing.T) {
	for _, tc := range []struct{ name, content string }{
		{"other models, comments, odd spacing", "# my settings\n-   name: gpt-4o   # the best\n    edit_format: diff\n\n- name: \"ollama_chat/llama3:8b\"\n  extra_params: {num_ctx: 8192}\n"},
		{"no final newline", "- name: claude-3\n  edit_format: whole"},
		{"empty file", ""},
		{"only comments", "# nothing yet\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := aider.SettingsPath(t.TempDir())
			if err := os.WriteFile(path, []byte(tc.content), 0o600); err != nil {
				t.Fatal(err)
			}
			change, err := aider.EnsureSettings(path, model)
			if err != nil || change != aider.SettingsAppended {
				t.Fatalf("EnsureSettings = %v, %v; want appended", change, err)
			}
			b, _ := os.ReadFile(path)
			if !strings.HasPrefix(string(b), tc.content) {
				t.Errorf("the user's content was changed:\n%s", b)
			}
			assertHasOurEntries(t, parse(t, path))
			if fi, _ := os.Stat(path); fi.Mode().Perm() != 0o600 {
				t.Errorf("mode %v, want the user's 0600 kept", fi.Mode().Perm())
			}
		})
	}
}

func TestEnsureSettingsKeepsUserEntry(t *testing.T) {
	for _, content := range []string{
		// The seed's README tells users to write this one.
		"- name: ollama/qwen2.5-coder:7b\n  extra_params:\n    num_ctx: 16384    # 16K context\n    num_gpu: 99\n",
		"- name: ollama_chat/qwen2.5-coder:7b\n  extra_params:\n    num_ctx: 4096\n",
	} {
		path := aider.SettingsPath(t.TempDir())
		if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		change, err := aider.EnsureSettings(path, model)
		b, _ := os.ReadFile(path)
		if err != nil || change != aider.SettingsKept || string(b) != content {
			t.Errorf("with %q: %v, %v, now %q; want the file kept byte for byte", content, change, err, b)
		}
	}
}

func TestEnsureSettingsRefusesWhatItCannotEditSafely(t *testing.T) {
	for _, tc := range []struct{ name, content, wantErr string }{
		{"invalid YAML", "- name: [unclosed\n", "not a YAML list"},
		{"a mapping, not a list", "name: ollama/x\n", "not a YAML list"},
		{"flow-style list", "[{name: gpt-4o}]\n", "add this entry to it yourself"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := aider.SettingsPath(t.TempDir())
			if err := os.WriteFile(path, []byte(tc.content), 0o644); err != nil {
				t.Fatal(err)
			}
			_, err := aider.EnsureSettings(path, model)
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) || !strings.Contains(err.Error(), path) {
				t.Errorf("error = %v, want one naming %s and saying %q", err, path, tc.wantErr)
			}
			if b, _ := os.ReadFile(path); string(b) != tc.content {
				t.Errorf("file changed to %q", b)
			}
		})
	}
}

func TestEnsureSettingsFollowsSymlink(t *testing.T) {
	home := t.TempDir()
	dotfiles := filepath.Join(t.TempDir(), "aider.yml")
	if err := os.WriteFile(dotfiles, []byte("- name: gpt-4o\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	path := aider.SettingsPath(home)
	if err := os.Symlink(dotfiles, path); err != nil {
		t.Fatal(err)
	}
	if change, err := aider.EnsureSettings(path, model); err != nil || change != aider.SettingsAppended {
		t.Fatalf("EnsureSettings = %v, %v; want appended", change, err)
	}
	if fi, err := os.Lstat(path); err != nil || fi.Mode()&os.ModeSymlink == 0 {
		t.Errorf("the symlink was replaced by a file")
	}
	assertHasOurEntries(t, parse(t, dotfiles))
}
