package aider

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"go.yaml.in/yaml/v3"

	"github.com/slapenir/slapenir/internal/pki/certfile"
)

// SettingsFile is the name of Aider's per-user model settings file, in the
// home directory.
const SettingsFile = ".aider.model.settings.yml"

// NumCtx is the context window aider-ollama gives the model: 16K tokens,
// which the seed recommends for 16 GB machines.
const NumCtx = 16384

// ModelNames are the names Aider may know an Ollama model by: ollama_chat/…,
// which aider-ollama uses, and ollama/…, which the seed's README writes in its
// settings examples.
func ModelNames(model string) []string {
	return []string{"ollama_chat/" + model, "ollama/" + model}
}

// SettingsChange says what EnsureSettings did to the settings file.
type SettingsChange int

const (
	// SettingsKept: the file already had an entry for the model, under one
	// of its names, and was left byte for byte as it was.
	SettingsKept SettingsChange = iota
	// SettingsCreated: there was no file; it now holds the entries.
	SettingsCreated
	// SettingsAppended: the file had no entry for the model; the entries were
	// appended after its unchanged content.
	SettingsAppended
)

func (c SettingsChange) String() string {
	switch c {
	case SettingsKept:
		return "kept"
	case SettingsCreated:
		return "created"
	case SettingsAppended:
		return "appended"
	}
	return fmt.Sprintf("SettingsChange(%d)", int(c))
}

// entry is one item of Aider's settings list, as far as aider-ollama writes it.
type entry struct {
	Name        string         `yaml:"name"`
	ExtraParams map[string]int `yaml:"extra_params"`
}

// EnsureSettings makes sure the settings file at path gives model a
// num_ctx of NumCtx, unless the user already configured the model there.
//
// The user's file is never rewritten: when it names the model (under either
// of ModelNames) it is kept as is; otherwise entries for both names are
// appended after its content, which stays byte for byte the same. A file that
// is not a YAML list, or that appending would break, is refused with an error
// and left alone. The write is atomic, and a symlinked file is updated where
// the link points.
func EnsureSettings(path, model string) (SettingsChange, error) {
	if model == "" {
		return SettingsKept, errors.New("aider settings: no model given (set OLLAMA_MODEL, e.g. qwen2.5-coder:7b)")
	}
	target, old, mode, err := readSettings(path)
	if err != nil {
		return SettingsKept, err
	}
	names, err := settingsNames(old)
	if err != nil {
		return SettingsKept, fmt.Errorf("aider settings: %s is not a YAML list of model settings (%v); fix it or move it away, aider-ollama will not edit it", target, err)
	}
	for _, n := range ModelNames(model) {
		if names[n] {
			return SettingsKept, nil
		}
	}

	addition, err := renderEntries(model)
	if err != nil {
		return SettingsKept, err
	}
	updated := append([]byte(nil), old...)
	if len(bytes.TrimSpace(updated)) > 0 {
		if !bytes.HasSuffix(updated, []byte("\n")) {
			updated = append(updated, '\n')
		}
		updated = append(updated, '\n') // a blank line sets our entries apart
	}
	updated = append(updated, addition...)
	// Appending block entries to, say, a flow-style list breaks the file;
	// check the result says what it should before writing it.
	after, err := settingsNames(updated)
	if err != nil || len(after) < len(names)+1 || !after[ModelNames(model)[0]] {
		return SettingsKept, fmt.Errorf("aider settings: cannot append to %s without breaking its layout; add this entry to it yourself:\n%s", target, addition)
	}

	change := SettingsAppended
	if old == nil {
		change = SettingsCreated
	}
	if err := certfile.WriteAtomicFrom(target, bytes.NewReader(updated), mode, certfile.AtomicOptions{KeepOwner: true, SyncDir: true}); err != nil {
		return SettingsKept, err
	}
	return change, nil
}

// readSettings resolves path through symlinks and reads it. A missing file
// reads as nil content with mode 0644.
func readSettings(path string) (target string, content []byte, mode fs.FileMode, err error) {
	target = path
	if fi, err := os.Lstat(path); err == nil && fi.Mode()&fs.ModeSymlink != 0 {
		if target, err = filepath.EvalSymlinks(path); err != nil {
			return "", nil, 0, fmt.Errorf("aider settings: %s is a symlink that cannot be followed (%v); fix or remove the link", path, err)
		}
	}
	fi, err := os.Stat(target)
	if errors.Is(err, fs.ErrNotExist) {
		return target, nil, 0o644, nil
	}
	if err != nil {
		return "", nil, 0, fmt.Errorf("aider settings: %w", err)
	}
	if !fi.Mode().IsRegular() {
		return "", nil, 0, fmt.Errorf("aider settings: %s is not a regular file; move it away so aider-ollama can write its settings", target)
	}
	content, err = os.ReadFile(target)
	if err != nil {
		return "", nil, 0, fmt.Errorf("aider settings: %w", err)
	}
	// A present but empty file must read as present, not as missing.
	if content == nil {
		content = []byte{}
	}
	return target, content, fi.Mode().Perm(), nil
}

// settingsNames parses a settings file and returns the model names it has
// entries for. Empty content (or only comments) has none.
func settingsNames(content []byte) (map[string]bool, error) {
	var list []map[string]any
	if err := yaml.Unmarshal(content, &list); err != nil {
		return nil, err
	}
	names := make(map[string]bool, len(list))
	for _, item := range list {
		if name, ok := item["name"].(string); ok {
			names[name] = true
		}
	}
	return names, nil
}

// renderEntries renders the entries for model, with a comment saying where
// they come from.
func renderEntries(model string) ([]byte, error) {
	var entries []entry
	for _, n := range ModelNames(model) {
		entries = append(entries, entry{Name: n, ExtraParams: map[string]int{"num_ctx": NumCtx}})
	}
	var buf bytes.Buffer
	fmt.Fprintf(&buf, "# Added by aider-ollama (SLAPENIR): a %dK context for %s. Edit freely; it is never overwritten.\n", NumCtx/1024, model)
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(entries); err != nil {
		return nil, fmt.Errorf("aider settings: rendering the entry for model %q: %w", model, err)
	}
	if err := enc.Close(); err != nil {
		return nil, fmt.Errorf("aider settings: rendering the entry for model %q: %w", model, err)
	}
	return buf.Bytes(), nil
}

// SettingsPath is the settings file in home.
func SettingsPath(home string) string {
	return filepath.Join(home, SettingsFile)
}
