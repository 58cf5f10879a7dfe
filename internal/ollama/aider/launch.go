package aider

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// DefaultModel is the seed's OLLAMA_MODEL default.
const DefaultModel = "qwen2.5-coder:7b"

// DefaultHelperPort is the seed's OLLAMA_PROXY_PORT default: where the local
// Ollama helper listens.
const DefaultHelperPort = 8765

// Config is what aider-ollama runs Aider with.
type Config struct {
	// Model is the Ollama model, e.g. "qwen2.5-coder:7b".
	Model string
	// HelperPort is the port of the Ollama helper on 127.0.0.1.
	HelperPort int
	// Args are the user's arguments, passed to aider after --model.
	Args []string
	// Environ is the environment Aider inherits (os.Environ()); its PATH is
	// where aider is looked for.
	Environ []string
}

// ConfigFromEnv reads the model from OLLAMA_MODEL and the helper port from
// OLLAMA_PROXY_PORT in environ, with the seed's defaults.
func ConfigFromEnv(environ, args []string) (Config, error) {
	cfg := Config{Model: DefaultModel, HelperPort: DefaultHelperPort, Args: args, Environ: environ}
	if m := lookupEnv(environ, "OLLAMA_MODEL"); m != "" {
		cfg.Model = m
	}
	if p := lookupEnv(environ, "OLLAMA_PROXY_PORT"); p != "" {
		port, err := strconv.Atoi(p)
		if err != nil || port < 1 || port > 65535 {
			return Config{}, fmt.Errorf("aider-ollama: OLLAMA_PROXY_PORT=%q is not a port number (1-65535); unset it to use %d", p, DefaultHelperPort)
		}
		cfg.HelperPort = port
	}
	return cfg, nil
}

// Command is a program to exec: the path of the binary, its argv (argv[0]
// included) and its environment.
type Command struct {
	Path string
	Argv []string
	Env  []string
}

// APIBase is the OLLAMA_API_BASE that sends Aider to the helper on port.
func APIBase(port int) string {
	return "http://127.0.0.1:" + strconv.Itoa(port)
}

// AiderCommand returns "aider --model ollama_chat/<model> args…" with
// OLLAMA_API_BASE set to the helper (replacing any value it had, since the
// helper is the only way out of the agent), or an error saying how to install
// Aider when it is not on PATH.
func AiderCommand(cfg Config) (Command, error) {
	model := cfg.Model
	if model == "" {
		model = DefaultModel
	}
	port := cfg.HelperPort
	if port == 0 {
		port = DefaultHelperPort
	}
	path, err := findExecutable("aider", lookupEnv(cfg.Environ, "PATH"))
	if err != nil {
		return Command{}, err
	}
	argv := append([]string{"aider", "--model", "ollama_chat/" + model}, cfg.Args...)
	env := make([]string, 0, len(cfg.Environ)+1)
	for _, kv := range cfg.Environ {
		if !strings.HasPrefix(kv, "OLLAMA_API_BASE=") {
			env = append(env, kv)
		}
	}
	env = append(env, "OLLAMA_API_BASE="+APIBase(port))
	return Command{Path: path, Argv: argv, Env: env}, nil
}

// findExecutable looks for name in the directories of pathList. Empty and
// relative entries are skipped: a wrapper must not run an "aider" that happens
// to be in the current directory.
func findExecutable(name, pathList string) (string, error) {
	for _, dir := range filepath.SplitList(pathList) {
		if dir == "" || !filepath.IsAbs(dir) {
			continue
		}
		candidate := filepath.Join(dir, name)
		if fi, err := os.Stat(candidate); err == nil && fi.Mode().IsRegular() && fi.Mode().Perm()&0o111 != 0 {
			return candidate, nil
		}
	}
	return "", fmt.Errorf("aider-ollama: aider is not installed (no executable %q in PATH=%q); install it with \"pipx install aider-chat\" (or \"pip install aider-chat\") and run aider-ollama again", name, pathList)
}

// lookupEnv returns the value of key in environ; of duplicates, the last,
// which is the one os/exec keeps.
func lookupEnv(environ []string, key string) string {
	value := ""
	for _, kv := range environ {
		if k, v, ok := strings.Cut(kv, "="); ok && k == key {
			value = v
		}
	}
	return value
}
