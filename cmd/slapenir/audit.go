package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/slapenir/slapenir/internal/audit"
	"github.com/slapenir/slapenir/internal/auditweb"
	"github.com/slapenir/slapenir/internal/config"
	"github.com/slapenir/slapenir/internal/hostport"
	"github.com/slapenir/slapenir/internal/keyfile"
)

const auditUsage = `usage:
  slapenir audit show   FILE… [--decision deny[,error]] [--host GLOB] [--identity ID] [--since 10m|TIME] [--json]
  slapenir audit verify FILE… [--key STATE_DIR/audit.key] [--checkpoint STATE_DIR/audit.checkpoint]
  slapenir audit stats  FILE… [--top 10] [same filters as show]
  slapenir audit serve  FILE… [--listen 127.0.0.1:8088] [--key STATE_DIR/audit.key] [--checkpoint …]
                        [--allow-host NAME] [--token-file FILE]

FILE is an audit log (audit.file of the proxy's config) or one of its rotated
backups (FILE.1, FILE.2, …), in any order; - reads standard input.
Instead of FILE, --config PROXY.yaml reads the audit.file that config names,
with its backups.
`

var auditSubcommands = []command{
	{"show", "print records, filtered", auditShow},
	{"verify", "check the hash chain (with the key: that nothing was rewritten; with the checkpoint: nothing cut off)", auditVerify},
	{"stats", "counts per host, decision, reason and identity", auditStats},
	{"serve", "a live web page over the log", auditServe},
}

func auditMain(args []string, stdout, stderr io.Writer) int {
	return runGroup("slapenir audit", auditSubcommands, args, stdout, stderr, func(w io.Writer) { fmt.Fprint(w, "\n"+auditUsage) })
}

// auditFilterFlags are the flags show and stats share.
type auditFilterFlags struct {
	decision, host, identity, since string
}

func (a *auditFilterFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&a.decision, "decision", "", "only these decisions, comma-separated (allow, deny, report, error)")
	fs.StringVar(&a.host, "host", "", "only hosts matching this glob (*.example.com)")
	fs.StringVar(&a.identity, "identity", "", "only this client identity")
	fs.StringVar(&a.since, "since", "", "only records since a duration ago (10m) or a time (2026-11-26T17:00:00Z)")
}

func (a *auditFilterFlags) filter() (audit.Filter, error) {
	f := audit.Filter{Host: a.host, Identity: a.identity}
	if a.decision != "" {
		f.Decisions = strings.Split(a.decision, ",")
	}
	if a.since != "" {
		t, err := audit.ParseSince(a.since, time.Now())
		if err != nil {
			return f, err
		}
		f.Since = t
	}
	return f, f.Validate()
}

// parse is auditParse for the subcommands that filter: it also turns the
// filter flags into an audit.Filter, or says on stderr what is wrong with them.
func (a *auditFilterFlags) parse(fs *flag.FlagSet, args []string, stderr io.Writer) ([]string, audit.Filter, bool) {
	files, ok := auditParse(fs, args, stderr)
	if !ok {
		return nil, audit.Filter{}, false
	}
	f, err := a.filter()
	if err != nil {
		fmt.Fprintln(stderr, err)
		return nil, audit.Filter{}, false
	}
	return files, f, true
}

// auditParse parses flags placed before, between or after the file names. The
// files are the ones given, or those of the --config's audit.file; one of the
// two is required, as there is no default log to read.
func auditParse(fs *flag.FlagSet, args []string, stderr io.Writer) ([]string, bool) {
	fs.SetOutput(stderr)
	configFile := fs.String("config", "", "read the audit.file (and its backups) of this proxy config instead of FILE")
	var files []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, false
		}
		rest := fs.Args()
		if len(rest) == 0 {
			break
		}
		if rest[0] == "--" {
			files = append(files, rest[1:]...)
			break
		}
		files, args = append(files, rest[0]), rest[1:]
	}
	switch {
	case *configFile != "" && len(files) > 0:
		fmt.Fprintf(stderr, "slapenir audit %s: give either FILE or --config, not both\n", fs.Name())
		return nil, false
	case *configFile != "":
		cfg, err := config.Load(*configFile)
		if err != nil {
			fmt.Fprintln(stderr, err)
			return nil, false
		}
		if cfg.Audit.File == "" {
			fmt.Fprintf(stderr, "slapenir audit %s: %s sets no audit.file (its audit log goes to stdout only); give the FILE to read\n", fs.Name(), *configFile)
			return nil, false
		}
		files = audit.LogFiles(cfg.Audit.File, cfg.Audit.MaxBackups)
		if len(files) == 0 {
			fmt.Fprintf(stderr, "slapenir audit %s: %s names audit.file %s, which does not exist yet\n", fs.Name(), *configFile, cfg.Audit.File)
			return nil, false
		}
	case len(files) == 0:
		fmt.Fprintf(stderr, "slapenir audit %s: give the audit log FILE to read (the proxy's audit.file), or --config PROXY.yaml\n\n%s", fs.Name(), auditUsage)
		return nil, false
	}
	return files, true
}

func auditShow(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("show", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var ff auditFilterFlags
	ff.register(fs)
	raw := fs.Bool("json", false, "print the raw JSON lines instead of one readable line each")
	files, f, ok := ff.parse(fs, args, stderr)
	if !ok {
		return 2
	}
	if err := audit.Show(stdout, stderr, files, f, *raw); err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	return 0
}

func auditVerify(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("verify", flag.ContinueOnError)
	fs.SetOutput(stderr)
	keyFile := fs.String("key", "", "the audit key the log was written with (the proxy's STATE_DIR/"+audit.KeyFile+"); without it the chain proves nothing against someone who can write the file")
	cpFile := fs.String("checkpoint", "", "the proxy's STATE_DIR/"+audit.CheckpointFile+": also detect that the newest records were cut off")
	files, ok := auditParse(fs, args, stderr)
	if !ok {
		return 2
	}
	o, err := verifyOptions(*keyFile, *cpFile)
	if err != nil {
		fmt.Fprintf(stderr, "slapenir audit verify: %v\n", err)
		return 2
	}
	how := "HMAC-SHA256 under the audit key"
	if o.Key == nil {
		how = "unkeyed SHA-256, which anyone who can write the file can recompute; give --key to check it was not rewritten"
	}
	reports, err := audit.Verify(files, o)
	for i, r := range reports {
		fmt.Fprintf(stdout, "%s: %d records, chain ok (%s)\n", r.Name, r.Records, how)
		if i == 0 && r.FirstSeq > 1 {
			fmt.Fprintf(stdout, "  note: it starts at seq %d; records 1–%d are in older files not given here (or were deleted)\n", r.FirstSeq, r.FirstSeq-1)
		}
		for _, u := range r.Unended {
			fmt.Fprintf(stdout, "  note: request %s (start record seq %d) was forwarded but has no end record: the proxy stopped while it was in flight\n", u.RequestID, u.Seq)
		}
	}
	var broken *audit.ChainError
	switch {
	case errors.As(err, &broken) && broken.Line == 0:
		fmt.Fprintf(stdout, "%s: chain broken: %v\n", broken.Name, broken.Err)
		return 1
	case errors.As(err, &broken):
		fmt.Fprintf(stdout, "%s:%d: chain broken: %v\n", broken.Name, broken.Line, broken.Err)
		return 1
	case err == nil && o.Checkpoint != nil:
		writeCheckpointResult(stdout, o.Checkpoint, reports)
	case err != nil:
		fmt.Fprintln(stderr, err)
		return 1
	}
	return 0
}

// writeCheckpointResult says what a checkpoint the log passed covers: the
// records up to its seq, and not (yet) those the proxy wrote after it.
func writeCheckpointResult(w io.Writer, cp *audit.Checkpoint, reports []audit.FileReport) {
	at := cp.Time.Format(time.RFC3339)
	if cp.Seq == 0 {
		fmt.Fprintf(w, "checkpoint: recorded at %s, when the proxy opened the log empty; it covers no record yet\n", at)
	} else {
		fmt.Fprintf(w, "checkpoint: the log reaches seq %d as recorded at %s\n", cp.Seq, at)
	}
	if n := len(reports); n > 0 && reports[n-1].LastSeq > cp.Seq {
		fmt.Fprintf(w, "  note: the %d record(s) after seq %d are newer than the checkpoint, so a cut among them would not show: the proxy records its checkpoint every %d records and when it stops\n",
			reports[n-1].LastSeq-cp.Seq, cp.Seq, audit.CheckpointEvery)
	}
}

// verifyOptions loads the audit key and checkpoint named (either may be "").
func verifyOptions(keyFile, cpFile string) (audit.VerifyOptions, error) {
	var o audit.VerifyOptions
	if keyFile != "" {
		key, err := keyfile.Load(keyFile, audit.KeyLen, "audit key")
		if err != nil {
			return o, err
		}
		o.Key = key
	}
	if cpFile != "" {
		cp, err := audit.ReadCheckpoint(cpFile)
		if err != nil {
			return o, err
		}
		o.Checkpoint = &cp
	}
	return o, nil
}

// auditServe serves the live page over the log until SIGTERM or SIGINT.
func auditServe(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	listen := fs.String("listen", "127.0.0.1:8088", "address to serve the page on (it shows what agents did: keep it on loopback)")
	keyFile := fs.String("key", "", "the audit key, to show the chain verified against it (STATE_DIR/"+audit.KeyFile+")")
	cpFile := fs.String("checkpoint", "", "the proxy's STATE_DIR/"+audit.CheckpointFile+", to show cut-off newest records")
	tokenFile := fs.String("token-file", "", "read the page's token from this file instead of making a random one (for scripts; at least 16 characters)")
	var allowHosts hostList
	fs.Var(&allowHosts, "allow-host", "also answer requests for this host name (a DNS name in front of the page); repeat or comma-separate for more")
	files, ok := auditParse(fs, args, stderr)
	if !ok {
		return 2
	}
	o, err := verifyOptions(*keyFile, *cpFile)
	if err != nil {
		fmt.Fprintf(stderr, "slapenir audit serve: %v\n", err)
		return 2
	}
	var token string
	if *tokenFile != "" {
		b, err := os.ReadFile(*tokenFile)
		if err != nil {
			fmt.Fprintf(stderr, "slapenir audit serve: reading the token: %v\n", err)
			return 2
		}
		// An empty token would have auditweb make a random one, which the
		// scripts reading this file could never send. (auditweb checks
		// the length of one given.)
		if token = strings.TrimSpace(string(b)); token == "" {
			fmt.Fprintf(stderr, "slapenir audit serve: the token file %s is empty\n", *tokenFile)
			return 2
		}
	}
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		fmt.Fprintf(stderr, "slapenir audit serve: cannot listen on %s: %v\n", *listen, err)
		return 1
	}
	defer ln.Close()
	srv, err := auditweb.New(auditweb.Options{Files: files, Verify: o, Token: token, Hosts: append(auditweb.ListenHosts(ln.Addr()), allowHosts...)})
	if err != nil {
		fmt.Fprintf(stderr, "slapenir audit serve: %v\n", err)
		return 1
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	go srv.Run(ctx.Done())
	hs := &http.Server{Handler: srv.Handler(), ReadHeaderTimeout: 10 * time.Second}
	go func() { <-ctx.Done(); _ = hs.Close() }()
	// The one place the token is written: the URL for the operator, as
	// Jupyter prints it. A token the operator gave in a file is theirs
	// already, and this line may go to a collected log: it is not repeated.
	where := "http://" + browsable(ln.Addr()) + "/"
	if *tokenFile == "" {
		where += "?token=" + srv.Token()
	} else {
		where += " (the token is in " + *tokenFile + ")"
	}
	fmt.Fprintf(stdout, "serving the audit log %s at %s (Ctrl-C to stop)\n", strings.Join(files, ", "), where)
	if err := hs.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		fmt.Fprintf(stderr, "slapenir audit serve: %v\n", err)
		return 1
	}
	return 0
}

// browsable is the listener's address as a browser can open it: an
// unspecified address (0.0.0.0, ::) is reached on loopback.
func browsable(addr net.Addr) string {
	tcp, ok := addr.(*net.TCPAddr)
	if !ok || !tcp.IP.IsUnspecified() {
		return addr.String()
	}
	ip := "127.0.0.1"
	if tcp.IP.To4() == nil {
		ip = "::1"
	}
	return hostport.Join(ip, tcp.Port)
}

// hostList is --allow-host: names, repeated or comma-separated.
type hostList []string

func (h *hostList) String() string { return strings.Join(*h, ",") }

func (h *hostList) Set(v string) error {
	for _, name := range strings.Split(v, ",") {
		name = strings.TrimSpace(name)
		if _, _, err := hostport.Parse(name, 80); err != nil {
			return fmt.Errorf("%q is not a host name (want a name such as audit.example.com, without scheme, path or wildcard)", name)
		}
		*h = append(*h, name)
	}
	return nil
}

func auditStats(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("stats", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var ff auditFilterFlags
	ff.register(fs)
	top := fs.Int("top", 10, "how many reasons and hosts to list")
	files, f, ok := ff.parse(fs, args, stderr)
	if !ok {
		return 2
	}
	s, err := audit.CollectStats(files, f, stderr)
	if err == nil {
		err = s.WriteText(stdout, *top)
	}
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	return 0
}
