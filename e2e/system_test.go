package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ollama/ollama/api"

	"github.com/slapenir/slapenir/internal/audit"
	"github.com/slapenir/slapenir/internal/testutil/stepca"
)

// TestEndToEnd is the whole story as root: the real step-ca, the
// agent in its own network namespace (veth to the proxy's), its token
// minted by `slapenir certs token`, `slapenir init` as PID 1 with the
// default services, and then what the agent can and cannot do.
func TestEndToEnd(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("the end-to-end test needs root: it creates a network namespace, a veth pair and nftables rules (run it with sudo, or see TestUpUnconfined)")
	}
	for _, tool := range []string{"ip", "unshare", "curl"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("the end-to-end test needs %s (iproute2, util-linux, curl): %v", tool, err)
		}
	}
	ca := caNamedCA(t)
	_, caPort, _ := net.SplitHostPort(strings.TrimPrefix(ca.URL, "https://"))

	// The agent's token, minted the way an operator would, for the CA as
	// the agent reaches it.
	tok, err := exec.Command(slapenir, "certs", "token", "agent", "--ca-url", "https://ca:"+caPort,
		"--ca-config", ca.ConfigPath, "--password-file", ca.PasswordFile).Output()
	if err != nil {
		t.Fatalf("slapenir certs token: %v", err)
	}

	secret := fmt.Sprintf("real-secret-%d-never-on-the-agent-side", time.Now().UnixNano())
	var seenMu sync.Mutex
	var seenAuth []string
	allowed := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seenMu.Lock()
		seenAuth = append(seenAuth, r.Header.Get("Authorization"))
		seenMu.Unlock()
		// Echo what arrived, as a careless API would: the proxy must
		// redact it on the way back.
		w.Header().Set("X-Echo", r.Header.Get("Authorization"))
		fmt.Fprintf(w, "allowed site; you sent %q", r.Header.Get("Authorization"))
	}))
	defer allowed.Close()
	denied := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		t.Errorf("the denied site was reached: %s %s", r.Method, r.URL)
	}))
	defer denied.Close()
	allowedHP := strings.TrimPrefix(allowed.URL, "http://")

	dir := agentTempDir(t)
	cfg := filepath.Join(dir, "proxy.yaml")
	writeFile(t, cfg, fmt.Sprintf(`policy:
  default: deny
  allow: ["%[1]s"]
  private_allow: ["127.0.0.1"]
secrets:
  credentials:
    - name: demo
      env: SLAPENIR_E2E_SECRET
      hosts: ["%[1]s"]
      plaintext_http: true   # the allowed site is http on loopback
`, allowedHP))
	state := filepath.Join(dir, "state")
	env := append(envWithout("OLLAMA_HOST", "OLLAMA_MODEL", "STEP_CA_URL", "STEP_TOKEN", "STEP_FINGERPRINT", "SLAPENIR_STATE_DIR", "HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy"),
		"STEP_TOKEN="+strings.TrimSpace(string(tok)), "SLAPENIR_E2E_SECRET="+secret)
	u := startUp(t, state, env, "--config", cfg, "--ca-url", ca.URL, "--ca-password-file", ca.PasswordFile,
		"--ca-root", ca.RootPEM, "--heartbeat", "1s")
	e := u.endpoints(true)
	nsPath := "/run/netns/" + e.Netns

	t.Run("bootstrap and the seed's ollama-verify lines", func(t *testing.T) {
		u.waitFor(t, `^\[agent\] .*Heartbeat #1 - Agent is running`, 2*time.Minute)
		u.waitFor(t, `^\[certs-bootstrap\] \[bootstrap-certs\] enrolled "agent"`, time.Second)
		u.waitFor(t, `^\[ollama-verify\] Ollama is reachable through proxy!$`, time.Second)
		u.waitFor(t, `^\[ollama-verify\] Model qwen2.5-coder:7b is available$`, time.Second)
		u.waitFor(t, `^\[enforce\] slapenir enforce: egress locked down`, time.Second)
	})

	t.Run("the Ollama Go client streams a chat through the helper", func(t *testing.T) {
		base := mustURL(t, "http://"+e.Helper)
		client := api.NewClient(base, &http.Client{Transport: &http.Transport{Proxy: nil, DialContext: netnsDialer(nsPath)}})
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		var tokens []string
		done := false
		stream := true
		err := client.Chat(ctx, &api.ChatRequest{Model: "qwen2.5-coder:7b", Stream: &stream,
			Messages: []api.Message{{Role: "user", Content: "say hello"}}}, func(r api.ChatResponse) error {
			if r.Message.Content != "" {
				tokens = append(tokens, r.Message.Content)
			}
			done = done || r.Done
			return nil
		})
		if err != nil {
			t.Fatalf("chat through the helper: %v", err)
		}
		if len(tokens) < 2 || !done {
			t.Fatalf("got %d token chunks (%q), done=%v; want a stream of several tokens ending done", len(tokens), tokens, done)
		}
	})

	t.Run("curl through HTTP_PROXY: allowed site, consistent 403, placeholder injected and never revealed", func(t *testing.T) {
		var phs []struct{ Name, Placeholder string }
		out := nsCurl(t, e.Netns, "-sS", "--cert", e.Certs+"/cert.pem", "--key", e.Certs+"/key.pem", "--cacert", e.Certs+"/root_ca.pem",
			"https://proxy:"+portOf(e.ProxyAddr)+"/placeholders")
		if err := json.Unmarshal([]byte(out), &phs); err != nil || len(phs) != 1 || phs[0].Name != "demo" {
			t.Fatalf("/placeholders = %s (%v), want the demo credential", out, err)
		}
		placeholder := phs[0].Placeholder
		if strings.Contains(out, secret) {
			t.Fatal("/placeholders revealed the real secret")
		}
		// What slapenir shell joins with holds the placeholder, never the value.
		if b, err := os.ReadFile(filepath.Join(state, "agent-shell.json")); err != nil {
			t.Errorf("agent-shell.json: %v", err)
		} else if strings.Contains(string(b), secret) || !strings.Contains(string(b), "SLAPENIR_E2E_SECRET="+placeholder) || strings.Contains(string(b), "STEP_TOKEN=") {
			t.Errorf("agent-shell.json must carry the placeholder and neither the real secret nor the one-time token")
		}
		// The agent's processes hold the placeholder, never the value.
		agentEnv := environ(t, serviceChild(t, e.InitPID, "agent"))
		if !slices.Contains(agentEnv, "SLAPENIR_E2E_SECRET="+placeholder) {
			t.Errorf("the agent's environment lacks SLAPENIR_E2E_SECRET=%s (the placeholder)", placeholder)
		}
		for _, pid := range append(initChildren(e.InitPID), e.InitPID) {
			for _, kv := range environ(t, pid) {
				if strings.Contains(kv, secret) {
					t.Errorf("process %d on the agent's side has the real secret in its environment (%s=…)", pid, strings.SplitN(kv, "=", 2)[0])
				}
			}
		}
		out = nsCurl(t, e.Netns, "-sS", "-i", "-x", "http://"+e.Relay, "-H", "Authorization: Bearer "+placeholder, allowed.URL+"/api")
		if !strings.HasPrefix(out, "HTTP/1.1 200") || !strings.Contains(out, "allowed site") {
			t.Errorf("allowed site through the relay:\n%s", out)
		}
		if strings.Contains(out, secret) {
			t.Errorf("the real secret reached the agent's side:\n%s", out)
		}
		seenMu.Lock()
		got := append([]string(nil), seenAuth...)
		seenMu.Unlock()
		if len(got) != 1 || got[0] != "Bearer "+secret {
			t.Errorf("the allowed site received Authorization %q, want the real value injected for the placeholder", got)
		}
		for i := 0; i < 2; i++ {
			out = nsCurl(t, e.Netns, "-sS", "-i", "-x", "http://"+e.Relay, denied.URL+"/")
			if !strings.HasPrefix(out, "HTTP/1.1 403") || !strings.Contains(out, `"reason"`) {
				t.Errorf("denied site through the relay, try %d: want the proxy's 403 with a reason:\n%s", i+1, out)
			}
		}
	})

	t.Run("direct connections from the agent's namespace fail", func(t *testing.T) {
		// Control: the path to the proxy is open, so what fails below is
		// stopped by the rules, not by a missing route.
		if out := nsCurl(t, e.Netns, "-sS", "--cacert", e.Certs+"/root_ca.pem", "https://proxy:"+portOf(e.ProxyAddr)+"/health"); !strings.Contains(out, `"status":"ok"`) {
			t.Fatalf("the proxy's /health from the agent's namespace: %s", out)
		}
		ln, err := net.Listen("tcp", net.JoinHostPort(e.HostIP, "0"))
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		if err := nsDial(nsPath, "tcp", ln.Addr().String()); err == nil {
			t.Errorf("TCP from the agent's namespace to %s (a listening upstream) connected", ln.Addr())
		}

		pc, err := net.ListenPacket("udp", net.JoinHostPort(e.HostIP, "0"))
		if err != nil {
			t.Fatal(err)
		}
		defer pc.Close()
		_ = inNetns(nsPath, func() error {
			c, err := net.Dial("udp", pc.LocalAddr().String())
			if err != nil {
				return err
			}
			defer c.Close()
			_, err = c.Write([]byte("escape"))
			return err
		})
		pc.SetReadDeadline(time.Now().Add(time.Second))
		if n, from, err := pc.ReadFrom(make([]byte, 64)); err == nil {
			t.Errorf("a UDP datagram (%d bytes from %s) left the agent's namespace", n, from)
		}

		agentIf := strings.TrimSuffix(e.HostIf, "h") + "a"
		run(t, "ip", "addr", "add", "fd00:5a:e2e::1/64", "dev", e.HostIf, "nodad")
		run(t, "ip", "-n", e.Netns, "addr", "add", "fd00:5a:e2e::2/64", "dev", agentIf, "nodad")
		ln6, err := net.Listen("tcp6", "[fd00:5a:e2e::1]:0")
		if err != nil {
			t.Fatal(err)
		}
		defer ln6.Close()
		if err := nsDial(nsPath, "tcp6", ln6.Addr().String()); err == nil {
			t.Errorf("IPv6 TCP from the agent's namespace to %s connected", ln6.Addr())
		}
	})

	t.Run("kill -9 of the agent service is followed by a restart", func(t *testing.T) {
		pid := serviceChild(t, e.InitPID, "agent")
		if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		u.waitFor(t, `^\[init\] agent killed by signal SIGKILL, restarting`, 10*time.Second)
		deadline := time.Now().Add(10 * time.Second)
		for {
			if p, ok := findServiceChild(e.InitPID, "agent"); ok && p != pid {
				break
			}
			if time.Now().After(deadline) {
				t.Fatal("no new agent process within 10s of kill -9")
			}
			time.Sleep(20 * time.Millisecond)
		}
	})

	t.Run("every request has its audit record with the agent's identity", func(t *testing.T) {
		// The proxy writes a record when a request ends; give the last
		// ones a moment by polling for the denied pair.
		var recs []audit.Record
		for deadline := time.Now().Add(5 * time.Second); ; {
			recs = readAudit(t, e.AuditFile)
			if countRecs(recs, func(r audit.Record) bool { return r.Decision == "deny" }) >= 2 || time.Now().After(deadline) {
				break
			}
			time.Sleep(50 * time.Millisecond)
		}
		for _, r := range recs {
			if r.Mode != "local" && r.Identity != "agent" {
				t.Errorf("audit record %d (%s %s %s:%d%s, %s %q) has identity %q, want agent", r.Seq, r.Mode, r.Method, r.Host, r.Port, r.Path, r.Decision, r.Reason, r.Identity)
			}
		}
		checks := []struct {
			what string
			ok   func(audit.Record) bool
		}{
			{"Ollama /api/tags (ollama-verify)", func(r audit.Record) bool { return r.Path == "/api/tags" && r.Decision == "allow" }},
			{"Ollama /api/chat (the Go client)", func(r audit.Record) bool { return r.Path == "/api/chat" && r.Decision == "allow" && r.Status == 200 }},
			{"the allowed site, credential demo injected", func(r audit.Record) bool {
				return r.Port == portNum(allowedHP) && r.Decision == "allow" && strings.Contains(strings.Join(r.Credentials, ","), "demo")
			}},
			{"the denied site", func(r audit.Record) bool {
				return r.Port == portNum(denied.URL) && r.Decision == "deny" && r.Status == 403
			}},
		}
		for _, c := range checks {
			if countRecs(recs, c.ok) == 0 {
				t.Errorf("no audit record for %s in %s", c.what, e.AuditFile)
			}
		}
		if b, _ := os.ReadFile(e.AuditFile); strings.Contains(string(b), secret) {
			t.Error("the audit log holds the real secret")
		}
	})

	t.Run("Ctrl-C stops everything and leaves nothing behind", func(t *testing.T) {
		procs := processesOf(state, e.InitPID, e.ProxyPID)
		if err := u.cmd.Process.Signal(syscall.SIGINT); err != nil {
			t.Fatal(err)
		}
		// init gets SIGTERM from up and must be gone within Docker's
		// 10-second stop window.
		if left := waitGone(map[int]string{e.InitPID: "init"}, 10*time.Second); len(left) > 0 {
			t.Errorf("init still runs 10s after Ctrl-C")
		}
		if code := u.interrupt(30 * time.Second); code != 0 {
			t.Errorf("slapenir up exited %d, want 0", code)
		}
		if left := waitGone(procs, 5*time.Second); len(left) > 0 {
			t.Errorf("processes left: %v", left)
		}
		for _, p := range []string{nsPath, "/sys/class/net/" + e.HostIf, "/etc/netns/" + e.Netns} {
			if _, err := os.Lstat(p); err == nil {
				t.Errorf("%s is left behind", p)
			}
		}
	})
}

// caNamedCA is the real step-ca, whose certificate also names "ca": the
// agent reaches it under that name through the veth pair, as in compose.
func caNamedCA(t *testing.T) *stepca.CA {
	t.Helper()
	ca := stepca.Start(t, stepca.Options{})
	ca.Stop()
	b, err := os.ReadFile(ca.ConfigPath)
	if err != nil {
		t.Fatal(err)
	}
	var conf map[string]any
	if err := json.Unmarshal(b, &conf); err != nil {
		t.Fatal(err)
	}
	conf["dnsNames"] = []string{"127.0.0.1", "localhost", "ca"}
	b, _ = json.MarshalIndent(conf, "", "  ")
	writeFile(t, ca.ConfigPath, string(b))
	ca.Restart()
	return ca
}

func writeFile(t *testing.T, path, data string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
}

func run(t *testing.T, argv ...string) {
	t.Helper()
	if out, err := exec.Command(argv[0], argv[1:]...).CombinedOutput(); err != nil {
		t.Fatalf("%s: %v\n%s", strings.Join(argv, " "), err, out)
	}
}

// nsCurl runs curl inside the agent's network namespace (where /etc/hosts
// names the proxy) and returns its output.
func nsCurl(t *testing.T, ns string, args ...string) string {
	t.Helper()
	argv := append([]string{"netns", "exec", ns, "curl", "--max-time", "15"}, args...)
	out, err := exec.Command("ip", argv...).CombinedOutput()
	if err != nil {
		t.Fatalf("ip %s: %v\n%s", strings.Join(argv, " "), err, out)
	}
	return string(out)
}

// nsDial connects from the namespace, waiting at most 2s: a dropped SYN
// never answers.
func nsDial(nsPath, network, addr string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	c, err := netnsDialer(nsPath)(ctx, network, addr)
	if err == nil {
		c.Close()
	}
	return err
}

// serviceChild is the pid of init's child running `slapenir NAME`.
func serviceChild(t *testing.T, initPID int, name string) int {
	t.Helper()
	pid, ok := findServiceChild(initPID, name)
	if !ok {
		t.Fatalf("no %s service under init %d", name, initPID)
	}
	return pid
}

func findServiceChild(initPID int, name string) (int, bool) {
	for _, pid := range initChildren(initPID) {
		cmd, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
		if strings.HasPrefix(string(cmd), "slapenir\x00"+name+"\x00") && alive(pid) {
			return pid, true
		}
	}
	return 0, false
}

// initChildren are init's child processes (its services). init is
// multi-threaded: a child hangs off whichever thread forked it, so every
// thread is asked.
func initChildren(initPID int) []int {
	var pids []int
	threads, _ := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/children", initPID))
	for _, th := range threads {
		b, _ := os.ReadFile(th)
		for _, f := range strings.Fields(string(b)) {
			if pid, err := strconv.Atoi(f); err == nil {
				pids = append(pids, pid)
			}
		}
	}
	return pids
}

// environ is a process's environment.
func environ(t *testing.T, pid int) []string {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/environ", pid))
	if err != nil {
		t.Fatal(err)
	}
	return strings.Split(strings.TrimRight(string(b), "\x00"), "\x00")
}

func portOf(hostport string) string {
	_, p, _ := net.SplitHostPort(hostport)
	return p
}

func portNum(s string) int {
	if u, err := url.Parse(s); err == nil && u.Host != "" {
		s = u.Host
	}
	p, _ := strconv.Atoi(portOf(s))
	return p
}

func countRecs(recs []audit.Record, ok func(audit.Record) bool) int {
	n := 0
	for _, r := range recs {
		if ok(r) {
			n++
		}
	}
	return n
}
