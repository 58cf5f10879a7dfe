package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"os/signal"
	"syscall"

	"github.com/slapenir/slapenir/internal/ollama/aider"
	"github.com/slapenir/slapenir/internal/ollama/verify"
)

func runOllamaVerify(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("ollama-verify", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var uf upstreamFlags
	uf.register(fs)
	defModel := os.Getenv("OLLAMA_MODEL")
	if defModel == "" {
		defModel = aider.DefaultModel
	}
	model := fs.String("model", defModel, "the model that must be available, from $OLLAMA_MODEL when set")
	attempts := fs.Int("attempts", verify.DefaultAttempts, "how many times to try Ollama's /api/tags")
	wait := fs.Duration("wait", verify.DefaultWait, "pause between two attempts")
	strict := fs.Bool("strict", false, "exit 1 when Ollama is unreachable or the model is missing (default: report and exit 0)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "ollama-verify: unexpected argument %q (see -h)\n", fs.Arg(0))
		return 2
	}
	// failed is the exit code of a failed check: the check is advisory
	// unless --strict.
	failed := 0
	if *strict {
		failed = 1
	}
	up, target, err := uf.upstream()
	if err != nil {
		fmt.Fprintf(stderr, "%sWARNING: %v\n", verify.Prefix, err)
		return failed
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	res, err := verify.Run(ctx, verify.Config{
		Proxy: up.URL(), Transport: up.Transport(false), Target: target, Model: *model,
		Attempts: *attempts, Wait: *wait, Out: stdout,
	})
	if err != nil {
		if !res.Reachable && ctx.Err() == nil {
			if hint := ollamaListenHint(target); hint != "" {
				fmt.Fprintf(stdout, "%s%s\n", verify.Prefix, hint)
			}
		}
		return failed
	}
	return 0
}

// ollamaListenHint says how to make a host's Ollama reachable from
// containers, for an Ollama the proxy reaches as another machine (the
// compose default host.docker.internal, a docker0 address): Ollama listens
// on 127.0.0.1 by default, which is the host's loopback, not the proxy
// container's, and that is by far the commonest reason it is unreachable.
// Nothing for an Ollama on loopback (slapenir up reaches that one itself).
func ollamaListenHint(target string) string {
	u, err := url.Parse(target)
	if err != nil {
		return ""
	}
	host := u.Hostname()
	if host == "localhost" {
		return ""
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsLoopback() {
		return ""
	}
	return "Ollama on a Linux host listens on 127.0.0.1:11434 by default, which containers cannot reach: " +
		"start it with OLLAMA_HOST=0.0.0.0 ollama serve, or for the systemd service run " +
		"sudo systemctl edit ollama, add [Service] Environment=\"OLLAMA_HOST=0.0.0.0\" and sudo systemctl restart ollama. " +
		"0.0.0.0 also opens it to your network: firewall port 11434, or give the docker0 address instead " +
		"(ip -4 addr show docker0, usually 172.17.0.1: OLLAMA_HOST=172.17.0.1 ollama serve; start it after Docker). " +
		"Check from the host with curl http://172.17.0.1:11434/api/tags"
}
