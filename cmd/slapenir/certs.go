package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/slapenir/slapenir/internal/config"
	"github.com/slapenir/slapenir/internal/pki/certfile"
	"github.com/slapenir/slapenir/internal/pki/devca"
	"github.com/slapenir/slapenir/internal/pki/enroll"
	"github.com/slapenir/slapenir/internal/pki/stepca"
	"github.com/slapenir/slapenir/internal/pki/token"
)

var certsSubcommands = []command{
	{"bootstrap", "enroll with a one-time token: writes cert.pem, key.pem (0600), root_ca.pem", certsBootstrap},
	{"renew", "renew the certificate (once, or --daemon: when a third of its life remains; SIGHUP forces)", certsRenew},
	{"inspect", "print subject, SANs, issuer, validity, time left and key type of a PEM file", certsInspect},
	{"bundle", "write the agent's one CA bundle: system roots, the CA root, the proxy's interception CA", certsBundle},
	{"placeholders", "fetch the placeholders this agent may use from the proxy (GET /placeholders, mTLS) and export them as AGENT_ENV=placeholder", certsPlaceholders},
	{"token", "mint a one-time enrollment token from a JWK provisioner (like `step ca token`)", certsToken},
	{"dev-issue", "issue a client certificate from the proxy's development CA", certsDevIssue},
}

// defaultCertsDir is where the agent's certificate is unless a flag says
// otherwise: $SLAPENIR_CERTS_DIR, which up's agent environment sets (its
// HOME is below up's state directory, not /home/agent), so that a command
// typed in slapenir shell — the seed's `ollama-proxy-helper &` — finds the
// certificate the services use; else the seed's /home/agent/certs.
func defaultCertsDir() string {
	if d := os.Getenv("SLAPENIR_CERTS_DIR"); d != "" {
		return d
	}
	return enroll.DefaultDir
}

func runCerts(args []string, stdout, stderr io.Writer) int {
	return runGroup("slapenir certs", certsSubcommands, args, stdout, stderr, nil)
}

// stepToken is $STEP_TOKEN, or the contents of $STEP_TOKEN_FILE (which
// the containers' CA writes at its start: the file is waited for, up to
// limit); "" when neither is set, which bootstrap reports.
func stepToken(limit time.Duration, stderr io.Writer) string {
	if t := os.Getenv("STEP_TOKEN"); t != "" {
		return t
	}
	file := os.Getenv("STEP_TOKEN_FILE")
	if file == "" {
		return ""
	}
	logged := false
	for deadline := time.Now().Add(limit); ; time.Sleep(200 * time.Millisecond) {
		b, err := os.ReadFile(file)
		if err == nil && strings.TrimSpace(string(b)) != "" {
			return strings.TrimSpace(string(b))
		}
		if time.Now().After(deadline) {
			fmt.Fprintf(stderr, "[bootstrap-certs] STEP_TOKEN_FILE %s did not appear within %s\n", file, limit)
			return ""
		}
		if !logged {
			fmt.Fprintf(stderr, "[bootstrap-certs] waiting for the one-time token in STEP_TOKEN_FILE %s\n", file)
			logged = true
		}
	}
}

// certsEnv returns the environment variable key, or def when it is unset or empty.
func certsEnv(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}

// certsLog prints progress lines with a prefix, so they are recognisable in a
// container's combined log.
func certsLog(prefix string, stderr io.Writer) func(string, ...any) {
	return func(format string, args ...any) {
		fmt.Fprintf(stderr, "[%s] %s\n", prefix, fmt.Sprintf(format, args...))
	}
}

func certsBootstrap(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("certs bootstrap", flag.ContinueOnError)
	fs.SetOutput(stderr)
	dir := fs.String("dir", defaultCertsDir(), "directory for cert.pem, key.pem and root_ca.pem ($SLAPENIR_CERTS_DIR when set)")
	timeout := fs.Duration("timeout", 2*time.Minute, "how long to keep retrying while the CA is unreachable")
	insecure := fs.Bool("insecure", false, "trust the CA's root without STEP_FINGERPRINT or a token sha claim (trust on first use)")
	force := fs.Bool("force", false, "enroll even if a valid certificate is already there")
	notAfter := fs.Duration("not-after", 0, "requested certificate lifetime (default: the provisioner's)")
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "usage: slapenir certs bootstrap [flags]   (also: bootstrap-certs)\n\nenvironment: STEP_TOKEN (required; or STEP_TOKEN_FILE, a file holding it, waited for up to --timeout), STEP_CA_URL (default "+enroll.DefaultCAURL+"),\nSTEP_PROVISIONER (default "+enroll.DefaultProvisioner+"), STEP_FINGERPRINT (root SHA-256, optional)\n\nflags:")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil || fs.NArg() != 0 {
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	b := enroll.Bootstrap{
		CAURL:       certsEnv("STEP_CA_URL", enroll.DefaultCAURL),
		Token:       stepToken(*timeout, stderr),
		Provisioner: certsEnv("STEP_PROVISIONER", enroll.DefaultProvisioner),
		Fingerprint: os.Getenv("STEP_FINGERPRINT"),
		Insecure:    *insecure,
		Dir:         certfile.Dir(*dir),
		Timeout:     *timeout,
		NotAfter:    *notAfter,
		Force:       *force,
		Logf:        certsLog("bootstrap-certs", stderr),
	}
	if _, err := b.Run(ctx); err != nil {
		fmt.Fprintf(stderr, "[bootstrap-certs] %v\n", err)
		if errors.Is(err, enroll.ErrUsage) {
			return 2
		}
		return 1
	}
	return 0
}

func certsRenew(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("certs renew", flag.ContinueOnError)
	fs.SetOutput(stderr)
	dir := fs.String("dir", defaultCertsDir(), "directory holding cert.pem, key.pem and root_ca.pem ($SLAPENIR_CERTS_DIR when set)")
	daemon := fs.Bool("daemon", false, "keep running: renew when a third of the lifetime remains (with jitter); SIGHUP renews now")
	execCmd := fs.String("exec", "", "shell command to run after each renewal")
	pid := fs.Int("pid", 0, "process to signal after each renewal")
	sigName := fs.String("signal", "HUP", "signal sent to --pid")
	timeout := fs.Duration("timeout", 2*time.Minute, "how long one renewal keeps retrying while the CA is unreachable")
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "usage: slapenir certs renew [--daemon] [flags]\n\nenvironment: STEP_CA_URL (default "+enroll.DefaultCAURL+")\nexit status: 0 renewed (or daemon stopped by SIGTERM), 1 renewal failed or the certificate expired\n\nflags:")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil || fs.NArg() != 0 {
		return 2
	}
	sig, err := parseSignal(*sigName)
	if err != nil {
		fmt.Fprintf(stderr, "certs renew: %v\n", err)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	logf := certsLog("certs-renew", stderr)
	r := &enroll.Renewer{
		CAURL:      certsEnv("STEP_CA_URL", enroll.DefaultCAURL),
		Dir:        certfile.Dir(*dir),
		Timeout:    *timeout,
		AfterRenew: enroll.Hook{Exec: *execCmd, PID: *pid, Signal: sig}.Run,
		Logf:       logf,
	}
	if *daemon {
		err = r.Run(ctx, enroll.ForceOnSignal(ctx, syscall.SIGHUP))
	} else {
		_, err = r.RenewNow(ctx)
	}
	if err != nil {
		logf("%v", err)
		return 1
	}
	return 0
}

func parseSignal(name string) (syscall.Signal, error) {
	switch strings.TrimPrefix(strings.ToUpper(name), "SIG") {
	case "HUP":
		return syscall.SIGHUP, nil
	case "USR1":
		return syscall.SIGUSR1, nil
	case "USR2":
		return syscall.SIGUSR2, nil
	case "TERM":
		return syscall.SIGTERM, nil
	case "INT":
		return syscall.SIGINT, nil
	}
	return 0, fmt.Errorf("--signal %q is not supported (use HUP, USR1, USR2, TERM or INT)", name)
}

func certsInspect(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("certs inspect", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "usage: slapenir certs inspect FILE   (a PEM file with one or more certificates)")
	}
	pos, err := parseWithPositionals(fs, args)
	if err != nil {
		return 2
	}
	if len(pos) != 1 {
		fs.Usage()
		return 2
	}
	certs, err := certfile.ReadCerts(pos[0])
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	now := time.Now()
	for i, c := range certs {
		if len(certs) > 1 {
			fmt.Printf("certificate %d of %d:\n", i+1, len(certs))
		}
		fmt.Print(certfile.Describe(c, now))
		if i < len(certs)-1 {
			fmt.Println()
		}
	}
	return 0
}

// parseWithPositionals parses flags that may come before, between or after
// positional arguments (`certs token agent-1 --password-file f`), which the
// flag package alone stops at.
func parseWithPositionals(fs *flag.FlagSet, args []string) ([]string, error) {
	var positional []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		args = fs.Args()
		if len(args) == 0 {
			return positional, nil
		}
		positional = append(positional, args[0])
		args = args[1:]
	}
}

// multiFlag is a flag given once per value (--san, --token).
type multiFlag []string

func (m *multiFlag) String() string     { return strings.Join(*m, ",") }
func (m *multiFlag) Set(v string) error { *m = append(*m, v); return nil }

func certsToken(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("certs token", flag.ContinueOnError)
	fs.SetOutput(stderr)
	caURL := fs.String("ca-url", certsEnv("STEP_CA_URL", enroll.DefaultCAURL), "the CA's URL (token audience; also where /provisioners is fetched)")
	prov := fs.String("provisioner", certsEnv("STEP_PROVISIONER", enroll.DefaultProvisioner), "JWK provisioner name")
	passFile := fs.String("password-file", "", "file with the provisioner key's password (required)")
	caConfig := fs.String("ca-config", "", "read the provisioner and root from this step-ca ca.json instead of asking the CA")
	rootFile := fs.String("root", "", "root certificate file (for the sha claim and to trust the CA); default: ca.json's root, or --fingerprint")
	fingerprint := fs.String("fingerprint", os.Getenv("STEP_FINGERPRINT"), "root SHA-256, when neither --root nor --ca-config gives the root")
	out := fs.String("out", "", "write the token to this file (0600, atomically) instead of stdout")
	var sans multiFlag
	fs.Var(&sans, "san", "subject alternative name (repeatable; default: the subject)")
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "usage: slapenir certs token SUBJECT --password-file FILE [flags]\n\nprints a one-time token (valid 5 minutes) to stdout\n\nflags:")
		fs.PrintDefaults()
	}
	pos, err := parseWithPositionals(fs, args)
	if err != nil {
		return 2
	}
	if len(pos) != 1 || *passFile == "" {
		fs.Usage()
		return 2
	}
	tok, err := mintToken(*caURL, *prov, *passFile, *caConfig, *rootFile, *fingerprint, pos[0], sans)
	if err != nil {
		fmt.Fprintf(stderr, "certs token: %v\n", err)
		return 1
	}
	if *out != "" {
		if err := os.MkdirAll(filepath.Dir(*out), 0o700); err != nil {
			fmt.Fprintf(stderr, "certs token: %v\n", err)
			return 1
		}
		if err := certfile.WriteAtomic(*out, []byte(tok+"\n"), 0o600); err != nil {
			fmt.Fprintf(stderr, "certs token: %v\n", err)
			return 1
		}
		fmt.Fprintf(stderr, "certs token: wrote a one-time token for %s to %s\n", pos[0], *out)
		return 0
	}
	fmt.Println(tok)
	return 0
}

func mintToken(caURL, provName, passFile, caConfig, rootFile, fingerprint, subject string, sans []string) (string, error) {
	password, err := os.ReadFile(passFile)
	if err != nil {
		return "", fmt.Errorf("cannot read --password-file: %w", err)
	}
	if rootFile == "" && caConfig != "" {
		rootFile, err = rootFromCAConfig(caConfig)
		if err != nil {
			return "", err
		}
	}
	sha := strings.ToLower(strings.ReplaceAll(fingerprint, ":", ""))
	if rootFile != "" {
		roots, err := certfile.ReadCerts(rootFile)
		if err != nil {
			return "", err
		}
		sha = certfile.Fingerprint(roots[0])
	}
	var provisioners []token.Provisioner
	if caConfig != "" {
		provisioners, err = token.ProvisionersFromCAJSON(caConfig)
	} else {
		if sha == "" {
			return "", fmt.Errorf("to ask %s for its provisioners the root must be trusted: give --root, --fingerprint (or STEP_FINGERPRINT), or --ca-config", caURL)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		root, ferr := stepca.FetchRoot(ctx, caURL, sha, false)
		if ferr != nil {
			return "", ferr
		}
		provisioners, err = stepca.New(caURL, root).Provisioners(ctx)
	}
	if err != nil {
		return "", err
	}
	return token.MintFrom(provisioners, password, token.Request{Provisioner: provName, CAURL: caURL, Subject: subject, SANs: sans, RootSHA: sha})
}

// rootFromCAConfig returns the root certificate path a ca.json names.
func rootFromCAConfig(path string) (string, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("cannot read --ca-config: %w", err)
	}
	return token.RootPathFromCAJSON(path, data)
}

func certsDevIssue(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("certs dev-issue", flag.ContinueOnError)
	fs.SetOutput(stderr)
	out := fs.String("out", "", "directory to write cert.pem, key.pem (0600) and root_ca.pem to (required)")
	stateDir := fs.String("state-dir", "", "the proxy's state directory holding dev-ca/ (default $SLAPENIR_STATE_DIR, /var/lib/slapenir as root, else ~/.local/state/slapenir)")
	lifetime := fs.Duration("lifetime", devca.DefaultClientLifetime, "certificate lifetime")
	var sans multiFlag
	fs.Var(&sans, "san", "extra subject alternative name (repeatable)")
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "usage: slapenir certs dev-issue NAME --out DIR [flags]\n\nissues a client certificate from the development CA the proxy creates when it has no tls section\n\nflags:")
		fs.PrintDefaults()
	}
	pos, err := parseWithPositionals(fs, args)
	if err != nil {
		return 2
	}
	if len(pos) != 1 || *out == "" {
		fs.Usage()
		return 2
	}
	name := pos[0]
	state := *stateDir
	if state == "" {
		state = config.DefaultStateDir()
	}
	ca, err := devca.Ensure(state)
	if err != nil {
		fmt.Fprintf(stderr, "certs dev-issue: %v\n", err)
		return 1
	}
	dir := certfile.Dir(*out)
	leaf, err := ca.IssueTo(dir, devca.Request{CommonName: name, SANs: sans, Usage: devca.Client, Lifetime: *lifetime})
	if err != nil {
		fmt.Fprintf(stderr, "certs dev-issue: %v\n", err)
		return 1
	}
	fmt.Printf("issued %q (valid until %s): %s, %s, %s\n", name, leaf.NotAfter.UTC().Format(time.RFC3339), dir.Cert(), dir.Key(), dir.Root())
	return 0
}
