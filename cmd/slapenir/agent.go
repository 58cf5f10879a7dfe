package main

import (
	"flag"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/slapenir/slapenir/internal/agent"
)

func runAgent(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("agent", flag.ContinueOnError)
	fs.SetOutput(stderr)
	interval := fs.Duration("interval", 30*time.Second, "time between heartbeats")
	health := fs.String("health-url", "", "proxy health URL (default $SLAPENIR_PROXY_URL/health, else http://$PROXY_HOST:$PROXY_PORT/health)")
	proxyURL := fs.String("proxy", "", "the proxy asked which placeholders this agent holds (GET /placeholders with the certificate in $SLAPENIR_CERTS_DIR; default $SLAPENIR_PROXY_URL, else the health URL without /health)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGTERM, syscall.SIGINT)
	return agent.Run(agent.Config{Interval: *interval, Stop: stop, HealthURL: *health, ProxyURL: *proxyURL})
}
