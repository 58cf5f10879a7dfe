package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"syscall"
	"testing"

	"github.com/slapenir/slapenir/internal/audit"
	"github.com/slapenir/slapenir/internal/testutil/poll"
)

// TestProxyReloadsItsConfig runs slapenir proxy and edits its file under
// it: the change applies to new requests while a stream opened before it
// completes; a file with a mistake is refused with its line and changes
// nothing; SIGHUP reloads too.
func TestProxyReloadsItsConfig(t *testing.T) {
	release := make(chan struct{})
	stream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/x-ndjson")
		io.WriteString(w, "{\"token\":1}\n")
		w.(http.Flusher).Flush()
		if r.URL.Path == "/stream" {
			<-release
			io.WriteString(w, "{\"token\":2}\n")
		}
	}))
	defer stream.Close()
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "other") }))
	defer other.Close()

	p := startProxyBinary(t, "--watch-interval", "100ms")
	health := func() string {
		tr := p.client.Transport.(*http.Transport).Clone()
		tr.Proxy = nil
		resp, err := (&http.Client{Transport: tr}).Get("https://" + p.addr + "/health")
		if err != nil {
			t.Fatal(err)
		}
		var h struct{ Config string }
		if err := json.NewDecoder(resp.Body).Decode(&h); err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return h.Config
	}
	status := func(url string) int {
		t.Helper()
		resp, err := p.client.Get(url)
		if err != nil {
			t.Fatalf("GET %s through the proxy: %v\n%s", url, err, p.stderr.String())
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode
	}
	v1 := health()
	if status(other.URL+"/before") != 200 {
		t.Fatal("the first configuration should allow the upstream")
	}
	s, err := p.client.Get(stream.URL + "/stream")
	if err != nil {
		t.Fatal(err)
	}
	defer s.Body.Close()
	first := make([]byte, 12)
	if _, err := io.ReadFull(s.Body, first); err != nil {
		t.Fatal(err)
	}

	// Deny the other upstream by editing the file.
	original, _ := os.ReadFile(p.config)
	denied := strings.Replace(string(original), "policy:\n", fmt.Sprintf("policy:\n  deny: [%q]\n", strings.TrimPrefix(other.URL, "http://")), 1)
	if err := os.WriteFile(p.config, []byte(denied), 0o600); err != nil {
		t.Fatal(err)
	}
	poll.Until(t, func() bool { return health() != v1 })
	v2 := health()
	if !strings.Contains(p.stderr.String(), "configuration reloaded") {
		t.Errorf("the log does not say the configuration was reloaded:\n%s", p.stderr.String())
	}
	if got := status(other.URL + "/after"); got != 403 {
		t.Fatalf("after the reload: %d, want 403 from the new policy", got)
	}
	if got := status(stream.URL + "/new"); got != 200 {
		t.Fatalf("an upstream the new policy allows: %d", got)
	}

	// A mistake is refused with its line; nothing changes.
	broken := strings.Replace(denied, "policy:\n", "policy:\n  default: alow\n", 1)
	if err := os.WriteFile(p.config, []byte(broken), 0o600); err != nil {
		t.Fatal(err)
	}
	poll.Until(t, func() bool { return strings.Contains(p.stderr.String(), "reload refused") })
	log := p.stderr.String()
	if !strings.Contains(log, `proxy.yaml:3: policy.default: \"alow\" is not \"allow\" or \"deny\"`) {
		t.Errorf("the refusal does not name the problem and its line:\n%s", log)
	}
	if health() != v2 || status(other.URL+"/still-denied") != 403 || status(stream.URL+"/still-allowed") != 200 {
		t.Fatal("a refused reload changed what the proxy does")
	}

	// SIGHUP reloads at once (the file is good again).
	if err := os.WriteFile(p.config, original, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := p.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	poll.Until(t, func() bool { return strings.Contains(p.stderr.String(), "why=SIGHUP") && health() == v1 })
	if got := status(other.URL + "/allowed-again"); got != 200 {
		t.Fatalf("after SIGHUP back to the first file: %d", got)
	}

	// The stream opened under the first configuration is still whole.
	close(release)
	rest, err := io.ReadAll(s.Body)
	if err != nil || string(first)+string(rest) != "{\"token\":1}\n{\"token\":2}\n" {
		t.Fatalf("the stream across three reloads: %q %q %v", first, rest, err)
	}
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := <-p.exited; err != nil {
		t.Fatalf("proxy exit: %v\n%s", err, p.stderr.String())
	}
	f, err := os.Open(p.auditFile)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	versions := map[string]string{}
	for dec := json.NewDecoder(f); ; {
		var r audit.Record
		if dec.Decode(&r) != nil {
			break
		}
		if r.Phase == "" {
			versions[r.Path] = r.Config
		}
	}
	for path, want := range map[string]string{"/before": v1, "/stream": v1, "/after": v2, "/still-denied": v2, "/allowed-again": v1} {
		if versions[path] != want {
			t.Errorf("record of %s names config %q, want %q", path, versions[path], want)
		}
	}
}
