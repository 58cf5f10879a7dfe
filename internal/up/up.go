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
	exe := o.Exe
	if exe == "" {
		if exe, err = os.Executable(); err != nil {
			return fmt.Errorf("up: cannot find this program's path to run the agent's services: %w", err)
		}
	}
	out := &sink{w: o.Out}
	say := func(format string, args ...any) { out.printf("[up] "+format+"\n", args...) }
	root := os.Geteuid() == 0

	if gone, err := removeStaleEphemeral(os.TempDir()); err != nil {
		say("note: could not remove what an earlier --ephemeral up left in %s: %v", os.TempDir(), err)
	} else {
		for _, d := range gone {
			say("removed %s, left (CA keys included) by an --ephemeral up that did not stop cleanly", d)
		}
	}
	sd, err := o.openState(time.Now())
	if err != nil {
		return err
	}
	state := sd.path
	// cleanups run in reverse order on the way out, whatever happened.
	var cleanups []func() error
	var kept string // what a persistent state directory keeps, for the stop line
	defer func() {
		for i := len(cleanups) - 1; i >= 0; i-- {
			err = errors.Join(err, cleanups[i]())
		}
		err = errors.Join(err, sd.close())
		if err == nil || errors.As(err, new(*CommandExit)) {
			if sd.ephemeral {
				say("stopped; no process, namespace, veth or rule of this run is left, and its temporary state directory is removed")
			} else {
				say("stopped; no process, namespace, veth or rule of this run is left; kept in %s: %s (--ephemeral keeps nothing)", state, kept)
			}
		}
	}()
	bg, cancelBG := context.WithCancel(context.WithoutCancel(ctx))
	cleanups = append(cleanups, func() error { cancelBG(); return nil })

	var ns *netns
	if root && !o.Unconfined {
		stale, err := removeStale()
		if err != nil {
			return fmt.Errorf("up: removing what an earlier up left behind: %w", err)
		}
		for _, pid := range stale {
			say("removed the namespace, veth and hosts file left by an up (pid %d) that did not stop cleanly", pid)
		}
		ns = newNetns(os.Getpid())
		if err := ns.create(); err != nil {
			return err
		}
		cleanups = append(cleanups, ns.remove)
	}

	ol, err := startOllama(ctx, o.OllamaHost, o.Model, o.Ollama)
	if err != nil {
		return err
	}
	cleanups = append(cleanups, func() error { stopCtx(ol.stop); return nil })

	proxyAddr, proxyURL, err := proxyAddress(ns)
	if err != nil {
		return err
	}
	home := filepath.Join(state, "agent")
	certs := certfile.Dir(filepath.Join(home, "certs"))
	workspace := filepath.Join(home, "workspace")
	if err := agentDirs(state, home, string(certs), workspace, root); err != nil {
		return err
	}
	if root {
		if err := agentCanReach(workspace); err != nil {
			return err
		}
	}
	if err := writeWgetrc(home, certs.CABundle(), root); err != nil {
		return err
	}

	env := agentBaseEnv(o.Env)
	var proxyTLS *config.TLS
	caAddr := net.JoinHostPort(hostOnly(proxyAddr), "9000")
	caWhat, caRoot := "", ""
	if o.CA.enabled() {
		sc, err := trustStepCA(ctx, o.CA, state)
		if err != nil {
			return err
		}
		names := []string{"proxy", "localhost", "127.0.0.1", "::1", hostOnly(proxyAddr)}
		if proxyTLS, err = sc.proxyTLS(bg, state, names, out.writer("[proxy-cert] ").printf); err != nil {
			return err
		}
		agentCAURL := o.CA.URL
		if ns != nil {
			_, caPort, _ := net.SplitHostPort(hostPortOf(o.CA.URL))
			caAddr = net.JoinHostPort(ns.HostIP.String(), caPort)
			fw, err := forwardTCP(caAddr, hostPortOf(o.CA.URL))
			if err != nil {
				return fmt.Errorf("up: cannot make the CA reachable from the agent's namespace at %s: %w", caAddr, err)
			}
			cleanups = append(cleanups, func() error { fw.close(); return nil })
			// The hosts file names the veth address "ca"; the CA's
			// certificate must carry that name (as in the compose setup).
			agentCAURL = "https://ca:" + caPort
		}
		tok := envValue(o.Env, "STEP_TOKEN")
		if tok == "" {
			if tok, err = sc.mint(ctx, agentCAURL, o.AgentName, nil); err != nil {
				return fmt.Errorf("up: minting the agent's one-time token: %w", err)
			}
		}
		env = append(env, "STEP_CA_URL="+agentCAURL, "STEP_TOKEN="+tok, "STEP_PROVISIONER="+o.CA.Provisioner, "STEP_FINGERPRINT="+sc.sha)
		caRoot = sc.rootFile
		caWhat = fmt.Sprintf("step-ca at %s (the agent enrolls at %s with a one-time token), root %s", o.CA.URL, agentCAURL, sc.rootFile)
	} else {
		rootFile, err := devCAAgentCert(state, o.AgentName, certs)
		if err != nil {
			return err
		}
		caRoot = rootFile
		if root {
			if err := chownTree(string(certs)); err != nil {
				return err
			}
		}
		caWhat = "development CA, root " + rootFile + " (agent certificate issued by up: no step-ca, so no enrollment)"
	}

	cfg, replaced, err := proxyConfig(o.ProxyConfig, proxyAddr, state, proxyTLS, ol)
	if err != nil {
		return err
	}
	kept = fmt.Sprintf("the audit log %s with its key and checkpoint, the CA (%s)", cfg.Audit.File, caRoot)
	if len(replaced) > 0 {
		say("note: up sets these itself, in place of %s's: %s", o.ProxyConfig, strings.Join(replaced, "; "))
	}
	placeholders, placeholderVars, err := placeholderEnv(cfg, o.Env)
	if err != nil {
		return err
	}
	env = append(env, placeholders...)
	proxyConfigPath := filepath.Join(state, "proxy.yaml")
	if err := writeProxyConfig(cfg, proxyConfigPath); err != nil {
		return err
	}
	px, err := keepProxy(func() (*child, error) {
		return startProxy(exe, proxyConfigPath, state, proxyAddr, caRoot, o.Env, out.writer("[proxy] "))
	}, say, cfg.Limits.ShutdownGrace.D()+2*time.Second)
	if err != nil {
		return err
	}
	cleanups = append(cleanups, px.stop)

	relayAddr, helperAddr := "127.0.0.1:3128", "127.0.0.1:8765"
	if ns == nil {
		if relayAddr, err = freeLoopback(); err == nil {
			helperAddr, err = freeLoopback()
		}
		if err != nil {
			return err
		}
	}
	command := o.command()
	p := plan{
		Certs: string(certs), Workspace: workspace, AsUser: root, Enroll: o.CA.enabled(), Enforce: ns != nil,
		ProxyAddr: proxyAddr, CAAddr: caAddr, ProxyURL: proxyURL, RelayAddr: relayAddr, HelperAddr: helperAddr,
		Model: o.Model, Heartbeat: o.Heartbeat.String(), NoAgent: command != nil,
	}
	servicesPath := o.Services
	if servicesPath == "" {
		servicesPath = filepath.Join(state, "agent-services.yaml")
		if err := os.WriteFile(servicesPath, []byte(servicesFile(p)), 0o644); err != nil {
			return fmt.Errorf("up: cannot write the service file: %w", err)
		}
	} else if servicesPath, err = filepath.Abs(servicesPath); err != nil {
		return err
	}
	bin := filepath.Join(state, "bin")
	if err := installBinary(bin, exe); err != nil {
		return err
	}
	scripts := filepath.Join(home, "scripts")
	if err := linkScripts(scripts, filepath.Join(bin, "slapenir")); err != nil {
		return err
	}
	env = append(env, "PATH="+bin+string(os.PathListSeparator)+scripts+string(os.PathListSeparator)+defaultPath, "HOME="+home,
		"SLAPENIR_PROXY_URL="+proxyURL, "OLLAMA_HOST="+ol.Host, "OLLAMA_MODEL="+o.Model)

	socket := filepath.Join(state, "init.sock")
	socketGroup := strconv.Itoa(os.Getgid())
	if root {
		socketGroup = "1000"
	}
	argv := []string{exe, "init", "--config", servicesPath, "--socket", socket, "--socket-group", socketGroup}
	if ns != nil {
		argv = ns.exec(argv...)
	}
	ag, err := startAgent(argv, env, out.writer(""), ns != nil)
	if err != nil {
		return err
	}
	cleanups = append(cleanups, func() error { return ag.stop(12 * time.Second) })

	notes, err := waitReady(ctx, socket, ag, out, func(msg string) { say("%s", msg) })
	if err != nil {
		if ctx.Err() != nil {
			say("stopping before everything was ready: the agent environment first, then the proxy")
			return nil
		}
		return err
	}
	slapenir := filepath.Join(bin, "slapenir")
	agentShellEnv := commandEnv(env, agentVars(p), socket)
	at := attachInfo{Bin: slapenir, Dir: workspace, Env: agentShellEnv}
	if ns != nil {
		at.Netns = ns.Name
	}
	removeAttach, err := writeAttach(state, at)
	if err != nil {
		return err
	}
	cleanups = append(cleanups, removeAttach)

	say("SLAPENIR is up; every agent service is ready; state directory %s", state)
	say("  CA:      %s", caWhat)
	say("  proxy:   %s (mTLS) on %s, pid %d, audit log %s", proxyURL, proxyAddr, px.pid(), cfg.Audit.File)
	kind := "real"
	if ol.Fake {
		kind = "the built-in fake: answers are canned"
	}
	say("  Ollama:  http://%s (%s), model %s", ol.Host, kind, o.Model)
	switch {
	case ol.Fake:
		say("  note:    no Ollama at %s: using the built-in fake; answers are canned", strings.Join(ol.Tried, ", "))
	case len(ol.Tried) > 0:
		say("  note:    tried %s first", strings.Join(ol.Tried, ", "))
	}
	for _, n := range notes {
		say("  note:    %s", n)
	}
	if cfg.Policy.Default == "allow" {
		say("  note:    to reach Ollama the proxy may now reach private address %s for the agent, and with policy default \"allow\" that is every port there; give --config with \"default: deny\" to allow Ollama's port alone", hostOnly(ol.Host))
	}
	exec := ""
	if ns != nil {
		say("  agent:   slapenir init pid %d, PID 1 of its own PID namespace in network namespace %s (veth %s %s <-> %s %s); egress locked down by slapenir enforce",
			ag.initPID, ns.Name, ns.HostIf, ns.HostIP, ns.AgentIf, ns.AgentIP)
		exec = "ip netns exec " + ns.Name + " "
	} else {
		why := "not root"
		if root {
			why = "--unconfined"
		}
		say("  agent:   slapenir init pid %d, UNCONFINED (%s): the agent's processes share this machine's network; nothing stops them from bypassing the proxy", ag.initPID, why)
	}
	say("  secrets: the agent's environment is not yours: it holds placeholders only (%s), swapped for the real values by the proxy", joinOrNone(placeholderVars))
	say("  relay:   HTTP_PROXY=http://%s, Ollama helper http://%s", relayAddr, helperAddr)
	say("  files:   services %s, certificates %s, control socket %s", servicesPath, certs, socket)
	say("Testing connectivity (the seed's three tests, adapted):")
	say("  curl http://%s/api/tags", ol.Host)
	say("  %scurl --cert %s --key %s --cacert %s -H \"X-Target-URL: http://%s\" %s/api/tags",
		exec, certs.Cert(), certs.Key(), certs.Root(), ol.Host, proxyURL)
	say("  %scurl http://%s/api/tags", exec, helperAddr)
	say("  %scurl -x http://%s http://example.com/    # any site, through the relay and the proxy", exec, relayAddr)
	say("  %s audit show %s                       # what the proxy decided", slapenir, cfg.Audit.File)
	say("  %s audit verify %s --key %s --checkpoint %s   # that nobody rewrote or cut it", slapenir, cfg.Audit.File, filepath.Join(state, audit.KeyFile), filepath.Join(state, audit.CheckpointFile))
	say("  %s ctl --socket %s status", slapenir, socket)
	say("  %s shell --state-dir %s    # a shell as the agent, from another terminal", slapenir, state)
	if command != nil {
		return runCommand(ctx, &o, command, out, say, slapenir, ns, agentShellEnv, workspace, state, ag)
	}
	say("Ctrl-C stops everything.")

	select {
	case <-ctx.Done():
		say("stopping: the agent environment first, then the proxy")
		return nil
	case <-ag.done:
		if ag.err != nil {
			return fmt.Errorf("up: the agent environment's init exited (%v); see its log above", ag.err)
		}
		say("the agent environment's init stopped (exit 0); stopping the rest")
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
