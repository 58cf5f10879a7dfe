package agent

import (
	"fmt"
	"io"
	"os"
	"strings"
	"time"
)

// Credentials whose presence the agent reports, as the seed's agent.py did,
// when the proxy cannot be asked which placeholders it announced.
var Credentials = []string{"OPENAI_API_KEY", "ANTHROPIC_API_KEY", "IBM_API_KEY", "SLACK_BOT_TOKEN", "AWS_ACCESS_KEY_ID"}

// Config is what Run needs; zero fields take the defaults.
type Config struct {
	Out      io.Writer           // log lines (default os.Stdout)
	Getenv   func(string) string // default os.Getenv
	Interval time.Duration       // between heartbeats (default 30s)
	Stop     <-chan os.Signal    // the first signal received ends the loop
	// HealthURL is the proxy's /health. Default: $SLAPENIR_PROXY_URL/health,
	// else http://$PROXY_HOST:$PROXY_PORT/health (proxy:3000) as in the seed.
	// The request honours HTTP_PROXY, so it goes over the relay when one is set.
	HealthURL string
	// ProxyURL is the proxy asked which placeholders the agent holds
	// (GET /placeholders, with the certificate in $SLAPENIR_CERTS_DIR).
	// Default: $SLAPENIR_PROXY_URL, else HealthURL without /health.
	ProxyURL string
}

// Run logs the environment report and heartbeats until cfg.Stop delivers a
// signal, then logs the total and returns 0.
func Run(cfg Config) int {
	cfg.defaults()
	cfg.logf("INFO", strings.Repeat("=", 60))
	cfg.logf("INFO", "SLAPENIR Agent Starting")
	cfg.logf("INFO", strings.Repeat("=", 60))
	cfg.reportCredentials()
	cfg.reportEnvironment()
	if !cfg.checkProxyHealth() {
		cfg.logf("WARNING", "Proxy health check failed, but continuing anyway")
	}
	cfg.logf("INFO", "Agent initialization complete")
	cfg.logf("INFO", fmt.Sprintf("Entering main loop (heartbeat every %s)...", cfg.Interval))

	beats := 0
	tick := time.NewTicker(cfg.Interval)
	defer tick.Stop()
	for {
		beats++
		cfg.logf("INFO", fmt.Sprintf("Heartbeat #%d - Agent is running", beats))
		select {
		case <-tick.C:
			continue
		case sig := <-cfg.Stop:
			cfg.logf("INFO", fmt.Sprintf("Received signal %s, initiating graceful shutdown...", sig))
		}
		break
	}
	cfg.logf("INFO", strings.Repeat("=", 60))
	cfg.logf("INFO", "SLAPENIR Agent Shutting Down")
	cfg.logf("INFO", fmt.Sprintf("Total heartbeats: %d", beats))
	cfg.logf("INFO", strings.Repeat("=", 60))
	return 0
}
