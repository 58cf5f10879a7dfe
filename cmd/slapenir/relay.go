package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"os"
	"os/signal"
	"strconv"
	"syscall"

	"github.com/slapenir/slapenir/internal/ollama/aider"
	"github.com/slapenir/slapenir/internal/pki/certfile"
	"github.com/slapenir/slapenir/internal/relay"
)

// upstreamFlags are the flags every command that reaches the proxy shares.
type upstreamFlags struct {
	proxy, certs, ollamaHost string
}

func (u *upstreamFlags) register(fs *flag.FlagSet) {
	def := os.Getenv("SLAPENIR_PROXY_URL")
	if def == "" {
		def = relay.DefaultProxyURL
	}
	fs.StringVar(&u.proxy, "proxy", def, "the SLAPENIR proxy, from $SLAPENIR_PROXY_URL when set: https://… for mTLS with the agent's certificate, http://… for a proxy in --insecure-plaintext mode")
	fs.StringVar(&u.certs, "certs", defaultCertsDir(), "directory with the agent's cert.pem, key.pem and root_ca.pem (re-read when renewed; $SLAPENIR_CERTS_DIR when set)")
	fs.StringVar(&u.ollamaHost, "ollama-host", os.Getenv("OLLAMA_HOST"), "Ollama as the proxy reaches it, host:port, from $OLLAMA_HOST when set (else "+relay.DefaultOllamaHost+")")
}

// upstream opens the proxy connection material and Ollama's target URL.
func (u *upstreamFlags) upstream() (*relay.Upstream, string, error) {
	target, err := relay.OllamaTarget(u.ollamaHost)
	if err != nil {
		return nil, "", err
	}
	up, err := relay.NewUpstream(u.proxy, certfile.Dir(u.certs))
	return up, target, err
}

// helperPort is OLLAMA_PROXY_PORT, or the seed's 8765.
func helperPort() (int, error) {
	cfg, err := aider.ConfigFromEnv(os.Environ(), nil)
	return cfg.HelperPort, err
}

func runRelay(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("relay", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var uf upstreamFlags
	uf.register(fs)
	port, err := helperPort()
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 2
	}
	forward := fs.String("listen", "127.0.0.1:3128", "address of the forward proxy (HTTP_PROXY/HTTPS_PROXY); empty turns it off")
	helper := fs.String("ollama-listen", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), "address of the Ollama helper, on port $OLLAMA_PROXY_PORT when set (else 8765); empty turns it off")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "relay: unexpected argument %q (all settings are flags; see -h)\n", fs.Arg(0))
		return 2
	}
	return serveRelay(uf, relay.Listeners{Forward: *forward, Helper: *helper}, stderr)
}

func runOllamaProxyHelper(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("ollama-proxy-helper", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "usage: ollama-proxy-helper [flags] [PORT]\n\nPORT overrides $OLLAMA_PROXY_PORT (default 8765); the helper listens on 127.0.0.1:PORT.")
		fs.PrintDefaults()
	}
	var uf upstreamFlags
	uf.register(fs)
	if err := fs.Parse(args); err != nil {
		return 2
	}
	port, err := helperPort()
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 2
	}
	switch fs.NArg() {
	case 0:
	case 1:
		p, err := strconv.Atoi(fs.Arg(0))
		if err != nil || p < 0 || p > 65535 {
			fmt.Fprintf(stderr, "ollama-proxy-helper: PORT %q is not a port number (0-65535)\n", fs.Arg(0))
			return 2
		}
		port = p
	default:
		fmt.Fprintln(stderr, "ollama-proxy-helper: takes at most one argument, the PORT")
		return 2
	}
	return serveRelay(uf, relay.Listeners{Helper: net.JoinHostPort("127.0.0.1", strconv.Itoa(port))}, stderr)
}

// serveRelay runs until SIGTERM or SIGINT. Failing to start exits 1, so a
// supervisor retries (the certificate may not be there yet).
func serveRelay(uf upstreamFlags, l relay.Listeners, stderr io.Writer) int {
	logger := log.New(stderr, "", log.LstdFlags)
	up, target, err := uf.upstream()
	if err != nil {
		logger.Print(err)
		return 1
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	r := relay.New(relay.Options{Upstream: up, OllamaTarget: target, Logf: logger.Printf})
	// SIGHUP (certs renew, or the init forwarding it) means the certificate
	// changed: the files are re-read anyway, and dropping idle connections
	// makes the next request present the new one.
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	go func() {
		for range hup {
			logger.Print("relay: SIGHUP: new connections to the proxy will present the renewed certificate")
			r.CloseIdleConnections()
		}
	}()
	logger.Printf("relay: to the proxy %s; Ollama helper requests go to %s", up.URL(), target)
	if err := relay.Run(ctx, r, l, logger.Printf); err != nil {
		logger.Print(err)
		return 1
	}
	return 0
}
