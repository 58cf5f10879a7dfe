package main

import (
	"context"
	"flag"
	"fmt"
	"io"
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
	_, err = verify.Run(ctx, verify.Config{
		Proxy: up.URL(), Transport: up.Transport(false), Target: target, Model: *model,
		Attempts: *attempts, Wait: *wait, Out: stdout,
	})
	if err != nil {
		return failed
	}
	return 0
}
