package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/slapenir/slapenir/internal/pki/cainit"
	"github.com/slapenir/slapenir/internal/pki/certfile"
	"github.com/slapenir/slapenir/internal/pki/enroll"
)

func runCA(args []string, stdout, stderr io.Writer) int {
	return runGroup("slapenir ca", []command{
		{"run", "run step-ca: --dir DIR --step-ca PATH [--url URL] [--address :9000] [--dns ca,localhost] [--root-cert F --root-key F] [--password-file F] [--token NAME=FILE[,SAN…]]…", caRun},
	}, args, stdout, stderr, nil)
}

func caRun(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("ca run", flag.ContinueOnError)
	fs.SetOutput(stderr)
	dir := fs.String("dir", "/home/step", "the CA's directory (a volume): ca.json, keys, password, database")
	stepCA := fs.String("step-ca", "/usr/local/bin/step-ca", "the step-ca binary")
	caURL := fs.String("url", enroll.DefaultCAURL, "the CA's URL as clients reach it (the tokens' audience)")
	address := fs.String("address", ":9000", "where step-ca listens")
	dns := fs.String("dns", "ca,localhost", "comma-separated names of the CA's TLS certificate")
	provisioner := fs.String("provisioner", enroll.DefaultProvisioner, "the JWK provisioner to create and mint tokens from")
	rootCert := fs.String("root-cert", "", "issue the CA's intermediate from this root certificate (PEM) instead of a new root; with --root-key, used only when the CA is first created")
	rootKey := fs.String("root-key", "", "the private key (PEM) of --root-cert")
	passwordFile := fs.String("password-file", "", "the provisioner password (a mounted Secret, for token minters outside this container); default: created in --dir")
	var tokens multiFlag // --token NAME=FILE[,SAN…], once per token
	fs.Var(&tokens, "token", "after start, mint a one-time token for NAME (with these SANs, else NAME) and write it to FILE; repeatable")
	if err := fs.Parse(args); err != nil || fs.NArg() != 0 {
		return 2
	}
	log := func(format string, a ...any) { fmt.Fprintf(stderr, "[ca] "+format+"\n", a...) }
	// The provisioner password never leaves the CA's own volume: only this
	// process mints tokens.
	if (*rootCert == "") != (*rootKey == "") {
		log("--root-cert and --root-key go together")
		return 2
	}
	passFile := *passwordFile
	var password []byte
	var err error
	if passFile == "" {
		passFile = filepath.Join(*dir, cainit.PasswordFile)
		password, err = cainit.LoadOrCreatePassword(*dir)
	} else if password, err = os.ReadFile(passFile); err == nil {
		password = []byte(strings.TrimRight(string(password), "\r\n"))
		if len(password) < 16 {
			err = fmt.Errorf("--password-file %s holds %d characters; a provisioner password needs at least 16", passFile, len(password))
		}
	}
	if err != nil {
		log("%v", err)
		return 1
	}
	configPath := filepath.Join(*dir, cainit.ConfigFile)
	if !cainit.Exists(*dir) {
		log("no CA in %s yet: creating one (root, intermediate, provisioner %s)", *dir, *provisioner)
		key, err := cainit.NewKey(*provisioner, password)
		if err != nil {
			log("%v", err)
			return 1
		}
		opts := cainit.Options{
			Dir: *dir, Name: "SLAPENIR", Address: *address, DNSNames: strings.Split(*dns, ","), Provisioners: []cainit.Key{key},
			DefaultDuration: 24 * time.Hour, MinDuration: 5 * time.Minute, MaxDuration: 30 * 24 * time.Hour,
		}
		if *rootCert != "" {
			roots, err := certfile.ReadCerts(*rootCert)
			if err != nil {
				log("%v", err)
				return 1
			}
			if opts.RootKey, err = certfile.ReadKey(*rootKey); err != nil {
				log("%v", err)
				return 1
			}
			opts.Root = roots[0]
		}
		if _, _, err := cainit.Init(opts); err != nil {
			log("%v", err)
			return 1
		}
	}
	rootPath := filepath.Join(*dir, cainit.RootFile)
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	cmd := exec.Command(*stepCA, configPath)
	cmd.Stdout, cmd.Stderr = stdout, stderr
	if err := cmd.Start(); err != nil {
		log("cannot start %s: %v", *stepCA, err)
		return 1
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	if err := waitCAHealthy(ctx, rootPath, *address, exited); err != nil {
		log("%v", err)
		_ = cmd.Process.Kill()
		return 1
	}
	for _, t := range tokens {
		if err := writeToken(t, *caURL, *provisioner, passFile, configPath, rootPath); err != nil {
			log("%v", err)
			_ = cmd.Process.Signal(syscall.SIGTERM)
			<-exited
			return 1
		}
	}
	log("step-ca is up at %s; %d one-time token(s) written", *caURL, len(tokens))
	select {
	case err := <-exited:
		log("step-ca exited: %v", err)
		return 1
	case <-ctx.Done():
		_ = cmd.Process.Signal(syscall.SIGTERM)
		<-exited
		return 0
	}
}

// writeToken mints the token one --token flag asks for and writes it,
// readable by the consumer that mounts FILE's volume (and no one else: only
// that consumer mounts it).
func writeToken(spec, caURL, provisioner, passFile, configPath, rootPath string) error {
	name, rest, ok := strings.Cut(spec, "=")
	if !ok || name == "" || rest == "" {
		return fmt.Errorf("--token %q: want NAME=FILE[,SAN…]", spec)
	}
	parts := strings.Split(rest, ",")
	file, sans := parts[0], parts[1:]
	if len(sans) == 0 {
		sans = []string{name}
	}
	tok, err := mintToken(caURL, provisioner, passFile, configPath, rootPath, "", name, sans)
	if err != nil {
		return fmt.Errorf("minting the token for %s: %w", name, err)
	}
	if err := os.MkdirAll(filepath.Dir(file), 0o755); err != nil {
		return err
	}
	return certfile.WriteAtomic(file, []byte(tok+"\n"), 0o644)
}

// waitCAHealthy waits until step-ca answers /health on address over TLS
// chaining to root.
func waitCAHealthy(ctx context.Context, rootPath, address string, exited <-chan error) error {
	roots, err := certfile.ReadCerts(rootPath)
	if err != nil {
		return err
	}
	pool := x509.NewCertPool()
	pool.AddCert(roots[0])
	host := address
	if strings.HasPrefix(host, ":") {
		host = "localhost" + host
	}
	client := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{Proxy: nil,
		TLSClientConfig: &tls.Config{RootCAs: pool, ServerName: "localhost", MinVersion: tls.VersionTLS12}}}
	deadline := time.Now().Add(60 * time.Second)
	var last error
	for time.Now().Before(deadline) {
		resp, err := client.Get("https://" + host + "/health")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			err = errors.New(resp.Status)
		}
		last = err
		select {
		case err := <-exited:
			return fmt.Errorf("step-ca exited before it was healthy: %v", err)
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
	return fmt.Errorf("step-ca did not answer https://%s/health within 60s: %v", host, last)
}
