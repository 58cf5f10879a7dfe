package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/signal"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/slapenir/slapenir/internal/secrets"
	"github.com/slapenir/slapenir/internal/up"
)

func runUp(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("up", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "usage: slapenir up [flags] [-- CMD [ARGS...]]\n\nWith -- CMD, CMD runs as the agent (uid 1000 as root, the agent's environment, its namespace, this terminal) once every service is ready, and up stops with its exit code.")
		fs.PrintDefaults()
	}
	stateDir := fs.String("state-dir", "", "directory for everything up creates and keeps (CA, audit log) (default $SLAPENIR_STATE_DIR, else ~/.local/state/slapenir/up, /var/lib/slapenir-up as root)")
	ephemeral := fs.Bool("ephemeral", false, "use a temporary state directory and remove it on exit: nothing of the run is kept")
	config := fs.String("config", "", "proxy configuration file to start from (default: the embedded defaults); up sets its listen, audit file, state dir and tls")
	services := fs.String("services", "", "service file for the agent environment's init (default: the generated default services)")
	shell := fs.Bool("shell", false, "once everything is ready, an interactive shell as the agent on this terminal; up stops when it exits")
	unconfined := fs.Bool("unconfined", false, "as root too, run the agent in this machine's network namespace (no veth, no enforce)")
	fakeOllama := fs.Bool("fake-ollama", false, "serve the built-in fake Ollama without looking for a real one")
	noFakeOllama := fs.Bool("no-fake-ollama", false, "fail unless a real Ollama answers at $OLLAMA_HOST or 127.0.0.1:11434")
	envFile := fs.String("env-file", ".env", "the seed's .env (OLLAMA_HOST, OLLAMA_MODEL, credentials) read when it exists; its values do not override the environment's")
	caURL := fs.String("ca-url", "", "a running step-ca to enroll with (default $STEP_CA_URL; empty: the development CA)")
	prov := fs.String("provisioner", "", "the step-ca JWK provisioner (default $STEP_PROVISIONER, else agent-provisioner)")
	passFile := fs.String("ca-password-file", "", "file with the provisioner key's password (default $STEP_PASSWORD_FILE)")
	caRoot := fs.String("ca-root", "", "the step-ca's root certificate file (or set $STEP_FINGERPRINT)")
	agentName := fs.String("agent-name", "agent", "the agent's certificate subject: its identity in the audit log")
	heartbeat := fs.Duration("heartbeat", 30*time.Second, "the placeholder agent's heartbeat interval")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	// What follows "--" is the command: flag stops parsing there.
	var command []string
	if rest := fs.Args(); len(args) > len(rest) && args[len(args)-len(rest)-1] == "--" {
		if len(rest) == 0 {
			fmt.Fprintln(stderr, "slapenir up: nothing after --: give the command to run as the agent (up -- aider-ollama)")
			return 2
		}
		command = rest
	} else if len(rest) > 0 {
		fmt.Fprintf(stderr, "slapenir up: unexpected argument %q (settings are flags; a command to run as the agent goes after --)\n", rest[0])
		return 2
	}
	switch {
	case *fakeOllama && *noFakeOllama:
		fmt.Fprintln(stderr, "slapenir up: --fake-ollama and --no-fake-ollama contradict each other")
		return 2
	case *shell && command != nil:
		fmt.Fprintln(stderr, "slapenir up: --shell and -- CMD both say what runs as the agent: give one")
		return 2
	case *ephemeral && *stateDir != "":
		fmt.Fprintln(stderr, "slapenir up: --ephemeral makes its own temporary state directory: drop --state-dir")
		return 2
	}
	env, read, err := withDotenv(os.Environ(), *envFile, flagGiven(fs, "env-file"))
	if err != nil {
		fmt.Fprintln(stderr, "slapenir up:", err)
		return 2
	}
	if len(read) > 0 {
		fmt.Printf("[up] read %s: %s\n", *envFile, strings.Join(read, ", "))
	}
	choice := up.OllamaAuto
	if *fakeOllama {
		choice = up.OllamaFake
	} else if *noFakeOllama {
		choice = up.OllamaReal
	}

	// Ctrl-C stops up, except while the command owns the terminal: then it
	// is the command's (aider uses it), as a shell leaves it to its
	// foreground job. SIGTERM always stops up.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var foreground atomic.Bool
	sigs := make(chan os.Signal, 4)
	// SIGPIPE too: `slapenir up | tee log` loses its tee to the same
	// Ctrl-C, and Go kills a program whose write to stdout hits a closed
	// pipe unless SIGPIPE is notified; up would die before stopping what
	// it started. Notified, the write fails and up's output moves to
	// stderr. (Not signal.Ignore: an ignored SIGPIPE is inherited by the
	// agent's command through exec, a handler is not.)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM, syscall.SIGPIPE)
	defer signal.Stop(sigs)
	go func() {
		for s := range sigs {
			if s == syscall.SIGPIPE || (s == syscall.SIGINT && foreground.Load()) {
				continue
			}
			cancel()
		}
	}()
	err = up.Run(ctx, up.Options{
		StateDir:    *stateDir,
		Ephemeral:   *ephemeral,
		ProxyConfig: *config,
		Services:    *services,
		Command:     command,
		Shell:       *shell,
		Foreground:  foreground.Store,
		Unconfined:  *unconfined,
		// Empty fields are read from env (the root .env included) by up.
		CA:        up.StepCA{URL: *caURL, Provisioner: *prov, PasswordFile: *passFile, Root: *caRoot},
		Ollama:    choice,
		AgentName: *agentName,
		Heartbeat: *heartbeat,
		Out:       stdout,
		Env:       env,
	})
	var ce *up.CommandExit
	if errors.As(err, &ce) {
		return ce.Code
	}
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	return 0
}

// withDotenv adds the variables of the .env file at path that env does not
// already set, as compose reads the root .env. A missing file is no error
// unless it was asked for by name; a malformed one is (naming the line,
// never a value). read lists the names taken from the file.
func withDotenv(env []string, path string, asked bool) (out, read []string, err error) {
	data, err := os.ReadFile(path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) && !asked {
			return env, nil, nil
		}
		return nil, nil, fmt.Errorf("reading the env file: %w", err)
	}
	vars, err := secrets.DotenvEnviron(data)
	clear(data)
	if err != nil {
		var de *secrets.DotenvError
		if errors.As(err, &de) {
			de.Path = path
		}
		return nil, nil, err
	}
	set := map[string]bool{}
	for _, kv := range env {
		k, _, _ := strings.Cut(kv, "=")
		set[k] = true
	}
	out = env
	for _, kv := range vars {
		k, _, _ := strings.Cut(kv, "=")
		if set[k] {
			continue
		}
		out = append(out, kv)
		read = append(read, k)
	}
	return out, read, nil
}

func flagGiven(fs *flag.FlagSet, name string) bool {
	given := false
	fs.Visit(func(f *flag.Flag) { given = given || f.Name == name })
	return given
}
