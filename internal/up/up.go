package up

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/slapenir/slapenir/internal/audit"
	"github.com/slapenir/slapenir/internal/config"
	"github.com/slapenir/slapenir/internal/pki/certfile"
)

// proxyPort is the seed's proxy port, used when it is free.
const proxyPort = "3000"

// Run starts everything, prints what runs where, and keeps it running until
// ctx ends (Ctrl-C) or the agent environment's init exits; then it stops
// everything in reverse order and removes what it created. A non-nil error
// says what failed to start or what could not be cleaned up.
func Run(ctx context.Context, o Options) (err error) {
	o.defaults()
	if err := o.CA.validate(); err != nil {
		return err
	}
	r := &run{o: o, out: &sink{w: o.Out, fallback: o.Stderr}, root: os.Geteuid() == 0}
	r.say = func(format string, args ...any) { r.out.printf("[up] "+format+"\n", args...) }
	if r.exe = o.Exe; r.exe == "" {
		if r.exe, err = os.Executable(); err != nil {
			return fmt.Errorf("up: cannot find this program's path to run the agent's services: %w", err)
		}
	}
	if err := r.openState(); err != nil {
		return err
	}
	defer func() { err = r.close(err) }()
	r.bg, r.cancelBG = context.WithCancel(context.WithoutCancel(ctx))
	r.cleanup(func() error { r.cancelBG(); return nil })
	// The phases, in order; each registers the cleanup of what it started.
	for _, phase := range []func(context.Context) error{r.namespace, r.ollama, r.agentHome, r.ca, r.proxy, r.agent} {
		if err := phase(ctx); err != nil {
			return err
		}
	}
	if ready, err := r.ready(ctx); err != nil || !ready {
		return err
	}
	r.report()
	return r.wait(ctx)
}

// run is one slapenir up: what each phase made, for the phases after it
// and for the cleanups, which run in reverse order on the way out.
type run struct {
	o    Options
	exe  string
	out  *sink
	say  func(format string, args ...any)
	root bool

	sd       *stateDir
	state    string
	cleanups []func() error
	kept     string // what a persistent state directory keeps, for the stop line
	bg       context.Context
	cancelBG context.CancelFunc

	ns                  *netns
	ol                  *ollama
	proxyAddr, proxyURL string
	home, workspace     string
	certs               certfile.Dir
	env                 []string
	proxyTLS            *config.TLS
	caAddr              string
	caWhat, caRoot      string
	cfg                 *config.Config
	placeholderVars     []string
	px                  *proxyKeeper
	plan                plan
	servicesPath, bin   string
	socket              string
	ag                  *agentEnv
	notes               []string
	opened              string // what up added to private_allow (openOllama)
	agentShellEnv       []string
}

func (r *run) cleanup(f func() error) { r.cleanups = append(r.cleanups, f) }

// openState removes what an --ephemeral up that did not stop cleanly left
// and opens this run's state directory.
func (r *run) openState() error {
	if gone, err := removeStaleEphemeral(os.TempDir()); err != nil {
		r.say("note: could not remove what an earlier --ephemeral up left in %s: %v", os.TempDir(), err)
	} else {
		for _, d := range gone {
			r.say("removed %s, left (CA keys included) by an --ephemeral up that did not stop cleanly", d)
		}
	}
	sd, err := r.o.openState(time.Now())
	if err != nil {
		return err
	}
	r.sd, r.state = sd, sd.path
	return nil
}

// close runs the cleanups in reverse order, closes the state directory
// and says what is left.
func (r *run) close(err error) error {
	for i := len(r.cleanups) - 1; i >= 0; i-- {
		err = errors.Join(err, r.cleanups[i]())
	}
	err = errors.Join(err, r.sd.close())
	if err == nil || errors.As(err, new(*CommandExit)) {
		if r.sd.ephemeral {
			r.say("stopped; no process, namespace, veth or rule of this run is left, and its temporary state directory is removed")
		} else {
			r.say("stopped; no process, namespace, veth or rule of this run is left; kept in %s: %s (--ephemeral keeps nothing)", r.state, r.kept)
		}
	}
	return err
}

// namespace makes the agent's network namespace and veth pair, as root
// and unless --unconfined, after removing what an earlier up left.
func (r *run) namespace(context.Context) error {
	if !r.root || r.o.Unconfined {
		return nil
	}
	stale, err := removeStale()
	if err != nil {
		return fmt.Errorf("up: removing what an earlier up left behind: %w", err)
	}
	for _, pid := range stale {
		r.say("removed the namespace, veth and hosts file left by an up (pid %d) that did not stop cleanly", pid)
	}
	r.ns = newNetns(os.Getpid())
	if err := r.ns.create(); err != nil {
		return err
	}
	r.cleanup(func() error {
		// Whatever is still in the namespace, init gone: deleting its name
		// would leave them running in a namespace nothing names.
		_, err := r.agentProcs(true).end(time.Second)
		return errors.Join(err, r.ns.remove())
	})
	return nil
}

// agentProcs are the agent's processes to end when up stops: with
// withInit false those init does not own (joined shells and what they
// started).
func (r *run) agentProcs(withInit bool) agentProcs {
	if r.ns == nil {
		return agentProcs{marker: []byte("SLAPENIR_INIT_SOCKET=" + r.socket)}
	}
	a := agentProcs{netns: "/run/netns/" + r.ns.Name, withInit: withInit}
	if r.ag != nil {
		a.initPID, a.skip = r.ag.initPID, r.ag.cmd.Process.Pid
	}
	return a
}

// endJoined ends the shells joined with slapenir shell, what `up -- CMD`
// left, and everything they started, first: they are the agent's, and
// would outlive up otherwise, stranded in a namespace with no way out.
func (r *run) endJoined() error {
	n, err := r.agentProcs(false).end(3 * time.Second)
	if n > 0 {
		r.say("ended %d process(es) of the agent's shells (slapenir shell) and what they started", n)
	}
	return err
}

// ollama finds an Ollama (or starts the fake) and picks the proxy's address.
func (r *run) ollama(ctx context.Context) error {
	ol, err := startOllama(ctx, r.o.OllamaHost, r.o.Model, r.o.Ollama)
	if err != nil {
		return err
	}
	r.ol = ol
	r.cleanup(func() error { stopCtx(ol.stop); return nil })
	r.proxyAddr, r.proxyURL, err = proxyAddress(r.ns)
	return err
}

// agentHome makes the agent's home, certificate and workspace directories.
func (r *run) agentHome(context.Context) error {
	r.home = filepath.Join(r.state, "agent")
	r.certs = certfile.Dir(filepath.Join(r.home, "certs"))
	r.workspace = filepath.Join(r.home, "workspace")
	if err := agentDirs(r.state, r.home, string(r.certs), r.workspace, r.root); err != nil {
		return err
	}
	if r.root {
		if err := agentCanReach(r.workspace); err != nil {
			return err
		}
	}
	return writeWgetrc(r.home, r.certs.CABundle(), r.root)
}

// ca sets up the agent's identity: with a step-ca, the proxy's enrolled
// certificate and the agent's one-time token; else a certificate from the
// development CA.
func (r *run) ca(ctx context.Context) error {
	r.env = agentBaseEnv(r.o.Env)
	r.caAddr = net.JoinHostPort(hostOnly(r.proxyAddr), "9000")
	if !r.o.CA.enabled() {
		rootFile, err := devCAAgentCert(r.state, r.o.AgentName, r.certs)
		if err != nil {
			return err
		}
		r.caRoot = rootFile
		if r.root {
			if err := chownTree(string(r.certs)); err != nil {
				return err
			}
		}
		r.caWhat = "development CA, root " + rootFile + " (agent certificate issued by up: no step-ca, so no enrollment)"
		return nil
	}
	sc, err := trustStepCA(ctx, r.o.CA, r.state)
	if err != nil {
		return err
	}
	names := []string{"proxy", "localhost", "127.0.0.1", "::1", hostOnly(r.proxyAddr)}
	if r.proxyTLS, err = sc.proxyTLS(r.bg, r.state, names, r.out.writer("[proxy-cert] ").printf); err != nil {
		return err
	}
	agentCAURL := r.o.CA.URL
	if r.ns != nil {
		_, caPort, _ := net.SplitHostPort(hostPortOf(r.o.CA.URL))
		r.caAddr = net.JoinHostPort(r.ns.HostIP.String(), caPort)
		fw, err := forwardTCP(r.caAddr, hostPortOf(r.o.CA.URL))
		if err != nil {
			return fmt.Errorf("up: cannot make the CA reachable from the agent's namespace at %s: %w", r.caAddr, err)
		}
		r.cleanup(func() error { fw.close(); return nil })
		// The hosts file names the veth address "ca"; the CA's
		// certificate must carry that name (as in the compose setup).
		agentCAURL = "https://ca:" + caPort
	}
	tok := envValue(r.o.Env, "STEP_TOKEN")
	if tok == "" {
		if tok, err = sc.mint(ctx, agentCAURL, r.o.AgentName, nil); err != nil {
			return fmt.Errorf("up: minting the agent's one-time token: %w", err)
		}
	}
	r.env = append(r.env, "STEP_CA_URL="+agentCAURL, "STEP_TOKEN="+tok, "STEP_PROVISIONER="+r.o.CA.Provisioner, "STEP_FINGERPRINT="+sc.sha)
	r.caRoot = sc.rootFile
	r.caWhat = fmt.Sprintf("step-ca at %s (the agent enrolls at %s with a one-time token), root %s", r.o.CA.URL, agentCAURL, sc.rootFile)
	return nil
}

// proxy writes the proxy's configuration and starts it, kept running.
func (r *run) proxy(context.Context) error {
	cfg, replaced, opened, err := proxyConfig(r.o.ProxyConfig, r.proxyAddr, r.state, r.proxyTLS, r.ol)
	if err != nil {
		return err
	}
	r.cfg, r.opened = cfg, opened
	r.kept = fmt.Sprintf("the audit log %s with its key and checkpoint, the CA (%s)", cfg.Audit.File, r.caRoot)
	if len(replaced) > 0 {
		r.say("note: up sets these itself, in place of %s's: %s", r.o.ProxyConfig, strings.Join(replaced, "; "))
	}
	placeholders, vars, err := placeholderEnv(cfg, r.o.Env)
	if err != nil {
		return err
	}
	r.env, r.placeholderVars = append(r.env, placeholders...), vars
	path := filepath.Join(r.state, "proxy.yaml")
	if err := writeProxyConfig(cfg, path); err != nil {
		return err
	}
	px, err := keepProxy(func() (*child, error) {
		return startProxy(r.exe, path, r.state, r.proxyAddr, r.caRoot, r.o.Env, r.out.writer("[proxy] "))
	}, r.say, cfg.Limits.ShutdownGrace.D()+2*time.Second)
	if err != nil {
		return err
	}
	r.px = px
	r.cleanup(px.stop)
	return nil
}

// agent writes the service file, installs the binary and the seed's
// script names, and starts slapenir init as the agent environment.
func (r *run) agent(context.Context) error {
	relayAddr, helperAddr := "127.0.0.1:3128", "127.0.0.1:8765"
	if r.ns == nil {
		var err error
		if relayAddr, err = freeLoopback(); err == nil {
			helperAddr, err = freeLoopback()
		}
		if err != nil {
			return err
		}
	}
	r.plan = plan{
		Certs: string(r.certs), Workspace: r.workspace, AsUser: r.root, Enroll: r.o.CA.enabled(), Enforce: r.ns != nil,
		ProxyAddr: r.proxyAddr, CAAddr: r.caAddr, ProxyURL: r.proxyURL, RelayAddr: relayAddr, HelperAddr: helperAddr,
		Model: r.o.Model, Heartbeat: r.o.Heartbeat.String(), NoAgent: r.o.command() != nil,
	}
	r.servicesPath = r.o.Services
	if r.servicesPath == "" {
		r.servicesPath = filepath.Join(r.state, "agent-services.yaml")
		if err := os.WriteFile(r.servicesPath, []byte(servicesFile(r.plan)), 0o644); err != nil {
			return fmt.Errorf("up: cannot write the service file: %w", err)
		}
	} else {
		var err error
		if r.servicesPath, err = filepath.Abs(r.servicesPath); err != nil {
			return err
		}
	}
	r.bin = filepath.Join(r.state, "bin")
	if err := installBinary(r.bin, r.exe); err != nil {
		return err
	}
	scripts := filepath.Join(r.home, "scripts")
	if err := linkScripts(scripts, filepath.Join(r.bin, "slapenir")); err != nil {
		return err
	}
	r.env = append(r.env, "PATH="+r.bin+string(os.PathListSeparator)+scripts+string(os.PathListSeparator)+defaultPath, "HOME="+r.home,
		"SLAPENIR_PROXY_URL="+r.proxyURL, "OLLAMA_HOST="+r.ol.Host, "OLLAMA_MODEL="+r.o.Model)

	r.socket = filepath.Join(r.state, "init.sock")
	socketGroup := strconv.Itoa(os.Getgid())
	if r.root {
		socketGroup = strconv.Itoa(agentID) // the agent user's group
	}
	argv := []string{r.exe, "init", "--config", r.servicesPath, "--socket", r.socket, "--socket-group", socketGroup}
	if r.ns != nil {
		argv = r.ns.exec(argv...)
	}
	ag, err := startAgent(argv, r.env, r.out.writer(""), r.ns != nil)
	if err != nil {
		return err
	}
	r.ag = ag
	r.cleanup(func() error { return ag.stop(12 * time.Second) })
	return nil
}

// ready waits until every agent service is ready and writes what
// `slapenir shell` needs to join; false (and no error) when ctx ended
// first.
func (r *run) ready(ctx context.Context) (bool, error) {
	notes, err := waitReady(ctx, r.socket, r.ag, r.out, func(msg string) { r.say("%s", msg) })
	if err != nil {
		if ctx.Err() != nil {
			r.say("stopping before everything was ready: the agent environment first, then the proxy")
			return false, nil
		}
		return false, err
	}
	r.notes = notes
	r.agentShellEnv = commandEnv(r.env, agentVars(r.plan), r.socket)
	at := attachInfo{Bin: filepath.Join(r.bin, "slapenir"), Dir: r.workspace, Env: r.agentShellEnv}
	if r.ns != nil {
		at.Netns = r.ns.Name
	}
	// Registered before removeAttach, so it runs after it: no shell can
	// join while the joined ones are being ended.
	r.cleanup(r.endJoined)
	removeAttach, err := writeAttach(r.state, at)
	if err != nil {
		return false, err
	}
	r.cleanup(removeAttach)
	return true, nil
}

// report says what runs where and how to try it.
func (r *run) report() {
	say, ns, certs, cfg, ol := r.say, r.ns, r.certs, r.cfg, r.ol
	slapenir := filepath.Join(r.bin, "slapenir")
	say("SLAPENIR is up; every agent service is ready; state directory %s", r.state)
	say("  CA:      %s", r.caWhat)
	say("  proxy:   %s (mTLS) on %s, pid %d, audit log %s", r.proxyURL, r.proxyAddr, r.px.pid(), cfg.Audit.File)
	say("  Ollama:  http://%s (%s), model %s", ol.Host, ol.kind(), r.o.Model)
	switch {
	case ol.Fake:
		say("  note:    no Ollama at %s: using the built-in fake; answers are canned", strings.Join(ol.Tried, ", "))
	case len(ol.Tried) > 0:
		say("  note:    tried %s first", strings.Join(ol.Tried, ", "))
	}
	for _, n := range r.notes {
		say("  note:    %s", n)
	}
	// What up opened in the proxy's SSRF protection, so that nobody has to
	// read the generated configuration to know.
	say("  note:    %s", r.opened)
	if ns != nil {
		say("  agent:   slapenir init pid %d, PID 1 of its own PID namespace in network namespace %s (veth %s %s <-> %s %s); egress locked down by slapenir enforce",
			r.ag.initPID, ns.Name, ns.HostIf, ns.HostIP, ns.AgentIf, ns.AgentIP)
	} else {
		why := "not root"
		if r.root {
			why = "--unconfined"
		}
		say("  agent:   slapenir init pid %d, UNCONFINED (%s): the agent's processes share this machine's network; nothing stops them from bypassing the proxy", r.ag.initPID, why)
	}
	say("  secrets: the agent's environment is not yours: it holds placeholders only (%s), swapped for the real values by the proxy", joinOrNone(r.placeholderVars))
	say("  relay:   HTTP_PROXY=http://%s, Ollama helper http://%s", r.plan.RelayAddr, r.plan.HelperAddr)
	say("  files:   services %s, certificates %s, control socket %s", r.servicesPath, certs, r.socket)
	// The seed's three tests, split by where they run. The agent's lines
	// are run as the agent (uid 1000, its environment: NO_PROXY holds
	// 127.0.0.1), as a user will paste them into slapenir shell; run as
	// root with ip netns exec they would prove nothing about the agent.
	say("Try it as the agent, in %s shell --state-dir %s from another terminal (-c 'CMD' runs one command):", slapenir, r.state)
	say("  curl http://%s/api/tags    # the seed's test 3: Ollama through the helper", r.plan.HelperAddr)
	say("  curl --cert %s --key %s --cacert %s -H \"X-Target-URL: http://%s\" %s/api/tags    # test 2: the proxy itself, with the agent's certificate",
		certs.Cert(), certs.Key(), certs.Root(), ol.Host, r.proxyURL)
	say("  curl --noproxy '' -x http://%s http://%s/api/tags    # Ollama through the relay and the proxy (NO_PROXY lists 127.0.0.1: without --noproxy '' curl skips -x and asks the agent's own loopback)",
		r.plan.RelayAddr, ol.Host)
	say("  curl http://example.com/    # any site: HTTP_PROXY is the relay, and the proxy decides")
	say("On this machine:")
	say("  curl http://%s/api/tags    # the seed's test 1: Ollama directly", ol.Host)
	say("  %s audit show %s    # what the proxy decided", slapenir, cfg.Audit.File)
	say("  %s audit verify %s --key %s --checkpoint %s    # that nobody rewrote or cut it", slapenir, cfg.Audit.File, filepath.Join(r.state, audit.KeyFile), filepath.Join(r.state, audit.CheckpointFile))
	say("  %s ctl --socket %s status    # the agent's services", slapenir, r.socket)
}

// wait runs `up -- CMD` as the agent, or waits for Ctrl-C or the agent
// environment's end.
func (r *run) wait(ctx context.Context) error {
	if command := r.o.command(); command != nil {
		return runCommand(ctx, &r.o, command, r.out, r.say, filepath.Join(r.bin, "slapenir"), r.ns, r.agentShellEnv, r.workspace, r.state, r.ag)
	}
	r.say("Ctrl-C stops everything.")
	select {
	case <-ctx.Done():
		r.say("stopping: the agent environment first, then the proxy")
		return nil
	case <-r.ag.done:
		if r.ag.err != nil {
			return fmt.Errorf("up: the agent environment's init exited (%v); see its log above", r.ag.err)
		}
		r.say("the agent environment's init stopped (exit 0); stopping the rest")
		return nil
	}
}

// proxyAddress picks where the proxy listens: the seed's port 3000 on the
// host end of the veth pair, or on loopback when the agent is unconfined
// (another free port if 3000 is taken). It returns the address and the URL
// the agent uses.
func proxyAddress(ns *netns) (addr, agentURL string, err error) {
	if ns != nil {
		return net.JoinHostPort(ns.HostIP.String(), proxyPort), "https://proxy:" + proxyPort, nil
	}
	addr = net.JoinHostPort("127.0.0.1", proxyPort)
	if ln, err := net.Listen("tcp", addr); err == nil {
		ln.Close()
	} else if addr, err = freeLoopback(); err != nil {
		return "", "", err
	}
	return addr, "https://" + addr, nil
}

func hostOnly(hostport string) string {
	h, _, _ := net.SplitHostPort(hostport)
	return h
}

// stopCtx calls stop with a short deadline.
func stopCtx(stop func(context.Context)) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	stop(ctx)
}

func envValue(env []string, key string) string {
	v := ""
	for _, kv := range env {
		if len(kv) > len(key) && kv[:len(key)] == key && kv[len(key)] == '=' {
			v = kv[len(key)+1:]
		}
	}
	return v
}

// hostPortOf is the host:port of a CA URL, with 443 when it has no port.
func hostPortOf(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.Port() != "" {
		if err != nil {
			return raw
		}
		return u.Host
	}
	return net.JoinHostPort(u.Hostname(), "443")
}

func freeLoopback() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", fmt.Errorf("up: no free loopback port for the relay: %w", err)
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}
