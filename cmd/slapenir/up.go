package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/slapenir/slapenir/internal/up"
)

func init() {
	register("up", "the whole system on one machine without Docker: CA, proxy, Ollama, and an agent under slapenir init", runUp)
}

func runUp(args []string) int {
	fs := flag.NewFlagSet("up", flag.ContinueOnError)
	stateDir := fs.String("state-dir", "", "directory for everything up creates (default $SLAPENIR_STATE_DIR, else a temporary directory removed on exit)")
	config := fs.String("config", "", "proxy configuration file to start from (default: the embedded defaults); up sets its listen, audit file, state dir and tls")
	unconfined := fs.Bool("unconfined", false, "as root too, run the agent in this machine's network namespace (no veth, no enforce)")
	caURL := fs.String("ca-url", os.Getenv("STEP_CA_URL"), "a running step-ca to enroll with (default $STEP_CA_URL; empty: the development CA)")
	prov := fs.String("provisioner", os.Getenv("STEP_PROVISIONER"), "the step-ca JWK provisioner (default $STEP_PROVISIONER, else agent-provisioner)")
	passFile := fs.String("ca-password-file", os.Getenv("STEP_PASSWORD_FILE"), "file with the provisioner key's password (default $STEP_PASSWORD_FILE)")
	caRoot := fs.String("ca-root", "", "the step-ca's root certificate file (or set $STEP_FINGERPRINT)")
	agentName := fs.String("agent-name", "agent", "the agent's certificate subject: its identity in the audit log")
	heartbeat := fs.Duration("heartbeat", 30*time.Second, "the placeholder agent's heartbeat interval")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(os.Stderr, "slapenir up: unexpected argument %q (all settings are flags; see -h)\n", fs.Arg(0))
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	err := up.Run(ctx, up.Options{
		StateDir:    *stateDir,
		ProxyConfig: *config,
		Unconfined:  *unconfined,
		CA: up.StepCA{URL: *caURL, Provisioner: *prov, PasswordFile: *passFile,
			Root: *caRoot, Fingerprint: os.Getenv("STEP_FINGERPRINT")},
		OllamaHost: os.Getenv("OLLAMA_HOST"),
		Model:      os.Getenv("OLLAMA_MODEL"),
		AgentName:  *agentName,
		Heartbeat:  *heartbeat,
		Out:        os.Stdout,
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 0
}
