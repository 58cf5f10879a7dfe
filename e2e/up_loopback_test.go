package e2e

import (
	"io"
	"net"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/slapenir/slapenir/internal/audit"
)

// TestUpOpensOllamaNotTheHostLoopback: up lets the proxy reach the Ollama
// it chose on the host's loopback — that address and port, nothing else.
// From inside the agent's namespace, through the relay and the proxy, a
// canary served on another port of the host's loopback (standing for an
// operator's audit page, a database, a debugger) is refused with the
// private-address reason and audited, by address and by name, while
// Ollama still answers through the helper and through the relay.
func TestUpOpensOllamaNotTheHostLoopback(t *testing.T) {
	needRootUp(t)
	canary, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer canary.Close()
	reached := make(chan string, 16)
	go func() {
		_ = http.Serve(canary, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			reached <- r.URL.Path
			io.WriteString(w, "canary: the host's loopback is open")
		}))
	}()
	canaryPort := strconv.Itoa(canary.Addr().(*net.TCPAddr).Port)

	dir := agentTempDir(t)
	u := startUp(t, filepath.Join(dir, "state"), upEnv(t, dir), "--fake-ollama", "--heartbeat", "1s")
	e := u.endpoints(true)
	u.waitFor(t, `^\[ollama-verify\] Ollama is reachable through proxy!$`, 2*time.Minute)
	if hostOnly(e.Ollama) != "127.0.0.1" || strings.HasSuffix(e.Ollama, ":"+canaryPort) {
		t.Fatalf("Ollama at %s: the test wants it on the host's loopback, on another port than the canary's %s", e.Ollama, canaryPort)
	}
	inside := netnsDialer("/run/netns/" + e.Netns)
	helper := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{Proxy: nil, DialContext: inside}}
	viaRelay := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{Proxy: http.ProxyURL(mustURL(t, "http://"+e.Relay)), DialContext: inside}}

	if body := get(t, helper, "http://"+e.Helper+"/api/tags", http.StatusOK); !strings.Contains(body, "qwen2.5-coder:7b") {
		t.Errorf("Ollama through the helper: /api/tags = %s, want the model", body)
	}
	if body := get(t, viaRelay, "http://"+e.Ollama+"/api/tags", http.StatusOK); !strings.Contains(body, "qwen2.5-coder:7b") {
		t.Errorf("Ollama through the relay: /api/tags = %s, want the model", body)
	}
	for _, host := range []string{"127.0.0.1", "localhost"} {
		body := get(t, viaRelay, "http://"+net.JoinHostPort(host, canaryPort)+"/"+host, http.StatusForbidden)
		if !strings.Contains(body, "private_address") {
			t.Errorf("canary at %s:%s through the relay: 403 %s, want the private_address reason", host, canaryPort, body)
		}
	}
	select {
	case p := <-reached:
		t.Fatalf("the canary on the host's loopback was reached from the agent's namespace (GET %s)", p)
	default:
	}

	if code := u.interrupt(30 * time.Second); code != 0 {
		t.Errorf("up exited %d after Ctrl-C", code)
	}
	refused := map[string]bool{}
	for _, r := range readAudit(t, e.AuditFile) {
		// A request is recorded ahead (phase start, its name-level
		// decision) and then with its outcome.
		if strconv.Itoa(r.Port) == canaryPort && r.Phase != audit.PhaseStart {
			if r.Decision != "deny" || r.Reason != "private_address" || r.Identity != "agent" {
				t.Errorf("audit record for the canary: %s %s identity %q, want deny private_address for the agent", r.Decision, r.Reason, r.Identity)
			}
			refused[r.Host] = true
		}
	}
	if !refused["127.0.0.1"] || !refused["localhost"] {
		t.Errorf("audited refusals of the canary by host: %v, want both 127.0.0.1 and localhost", refused)
	}
}
