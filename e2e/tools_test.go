package e2e

import (
	"crypto/tls"
	"encoding/base64"
	"fmt"
	"net"
	"net/http"
	"net/http/cgi"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/slapenir/slapenir/internal/audit"
	"github.com/slapenir/slapenir/internal/pki/devca"
)

// toolsHost is where the test's sites listen: a host loopback address the
// agent's NO_PROXY (localhost, 127.0.0.1, ::1) does not name, so the
// agent's tools must go through the relay and the proxy to reach it.
const toolsHost = "127.0.0.2"

// TestUpToolsAsTheAgent is `slapenir up -- CMD` with the ordinary tools a
// user runs, each the real client inside the agent's namespace as uid
// 1000, with nothing but the environment up gives the agent: curl and wget
// over HTTP and HTTPS (the HTTPS site intercepted by the proxy, trusted
// through the one CA bundle), git clone over HTTP and HTTPS from a real
// git http-backend that wants Basic auth with the real secret (the agent
// only has the placeholder), Python requests through the proxy and
// straight to the Ollama helper. up exits with the command's code.
func TestUpToolsAsTheAgent(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("runs the tools in the agent's network namespace as uid 1000: needs root")
	}
	for _, tool := range []string{"ip", "unshare", "curl", "wget", "git"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("needs %s (Debian: iproute2 util-linux curl wget git): %v", tool, err)
		}
	}
	// Debian's python3, which uid 1000 can run (not a python under /root).
	if err := exec.Command("/usr/bin/python3", "-c", "import requests").Run(); err != nil {
		t.Skipf("needs /usr/bin/python3 with requests (Debian: python3-requests): %v", err)
	}
	gitExec, err := exec.Command("git", "--exec-path").Output()
	if err != nil {
		t.Fatal(err)
	}
	backend := filepath.Join(strings.TrimSpace(string(gitExec)), "git-http-backend")

	secret := fmt.Sprintf("real-git-secret-%d", time.Now().UnixNano())
	dir := agentTempDir(t)
	repos := filepath.Join(dir, "repos")
	makeRepo(t, repos, "repo.git", "hello from git\n")

	git := &cgi.Handler{Path: backend, Root: "/", Env: []string{"GIT_PROJECT_ROOT=" + repos, "GIT_HTTP_EXPORT_ALL=1"}}
	wantAuth := "Basic " + base64.StdEncoding.EncodeToString([]byte("x:"+secret))
	site := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, "/repo.git/") {
			if r.Header.Get("Authorization") != wantAuth {
				w.Header().Set("WWW-Authenticate", `Basic realm="git"`)
				http.Error(w, "the real credential is needed", http.StatusUnauthorized)
				return
			}
			git.ServeHTTP(w, r)
			return
		}
		fmt.Fprintf(w, "hello over %s", map[bool]string{true: "https", false: "http"}[r.TLS != nil])
	})
	plainLn, err := net.Listen("tcp", toolsHost+":0")
	if err != nil {
		t.Skipf("cannot listen on %s (this host's loopback): %v", toolsHost, err)
	}
	plain := &http.Server{Handler: site}
	go plain.Serve(plainLn)
	defer plain.Close()

	ca, err := devca.EnsureAt(filepath.Join(dir, "site-ca"), "test sites CA")
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := ca.Issue(devca.Request{CommonName: "tools site", SANs: []string{toolsHost}, Usage: devca.Server})
	if err != nil {
		t.Fatal(err)
	}
	pair := tls.Certificate{PrivateKey: leaf.Key}
	for _, c := range leaf.Chain {
		pair.Certificate = append(pair.Certificate, c.Raw)
	}
	tlsLn, err := tls.Listen("tcp", toolsHost+":0", &tls.Config{Certificates: []tls.Certificate{pair}})
	if err != nil {
		t.Fatal(err)
	}
	secure := &http.Server{Handler: site}
	go secure.Serve(tlsLn)
	defer secure.Close()
	plainHP, tlsHP := plainLn.Addr().String(), tlsLn.Addr().String()

	cfg := filepath.Join(dir, "proxy.yaml")
	writeFile(t, cfg, fmt.Sprintf(`policy:
  default: deny
  allow: ["%[1]s", "%[2]s"]
  private_allow: ["%[3]s"]
  connect_ports: [443, %[5]s]
intercept:
  upstream_ca: ["%[4]s"]
secrets:
  credentials:
    - name: git
      env: SLAPENIR_GIT_SECRET
      hosts: ["%[1]s", "%[2]s"]
      plaintext_http: true   # the plain site is http on loopback
`, plainHP, tlsHP, toolsHost, ca.RootFile(), portOf(tlsHP)))

	script := strings.Join([]string{
		`export GIT_TERMINAL_PROMPT=0`,
		`echo "uid=$(id -u)"`,
		`echo "bundle=$SSL_CERT_FILE|$REQUESTS_CA_BUNDLE|$CURL_CA_BUNDLE|$GIT_SSL_CAINFO|$PIP_CERT|$NODE_EXTRA_CA_CERTS"`,
		`echo "curl-http=$(curl -sS http://` + plainHP + `/hello 2>&1)"`,
		`echo "curl-https=$(curl -sS https://` + tlsHP + `/hello 2>&1)"`,
		`echo "wget-http=$(wget -q -O - http://` + plainHP + `/hello 2>&1)"`,
		`echo "wget-https=$(wget -q -O - https://` + tlsHP + `/hello 2>&1)"`,
		`git clone -q "http://x:$SLAPENIR_GIT_SECRET@` + plainHP + `/repo.git" g1 2>&1 && echo "git-http=$(cat g1/README)"`,
		`git clone -q "https://x:$SLAPENIR_GIT_SECRET@` + tlsHP + `/repo.git" g2 2>&1 && echo "git-https=$(cat g2/README)"`,
		`python3 -c 'import requests,sys; print("requests-https=" + requests.get(sys.argv[1]).text); print("requests-helper=%d" % requests.get(sys.argv[2]).status_code)' https://` + tlsHP + `/hello http://127.0.0.1:8765/api/tags 2>&1`,
		`exit 7`,
	}, "\n")
	state := filepath.Join(dir, "state")
	env := append(envWithout("OLLAMA_HOST", "OLLAMA_MODEL", "STEP_CA_URL", "STEP_TOKEN", "SLAPENIR_STATE_DIR", "HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy", "NO_PROXY", "no_proxy"),
		"SLAPENIR_GIT_SECRET="+secret)
	u := startUp(t, state, env, "--config", cfg, "--fake-ollama", "--", "sh", "-c", script)
	u.waitFor(t, "^\\[up\\] `sh -c export GIT_TERMINAL_PROMPT=0 …` exited with code 7; stopping", 3*time.Minute)
	select {
	case <-u.done:
	case <-time.After(30 * time.Second):
		t.Fatal("up did not exit after the command did")
	}
	out := u.output()
	if code := exitCode(u.err); code != 7 {
		t.Errorf("up exited %d, want the command's 7", code)
	}
	bundle := filepath.Join(state, "agent", "certs", "ca-bundle.pem")
	for _, want := range []string{
		"uid=1000",
		"bundle=" + strings.Repeat(bundle+"|", 5) + bundle,
		"curl-http=hello over http",
		"curl-https=hello over https",
		"wget-http=hello over http",
		"wget-https=hello over https",
		"git-http=hello from git",
		"git-https=hello from git",
		"requests-https=hello over https",
		"requests-helper=200",
	} {
		if !regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(want) + `$`).MatchString(out) {
			t.Errorf("the agent's tools: no line %q", want)
		}
	}
	if strings.Contains(out, secret) {
		t.Error("the real secret reached the agent's side")
	}
	if !t.Failed() {
		// Every request went through the proxy, as the agent.
		recs := readAudit(t, filepath.Join(state, "audit", "audit.jsonl"))
		gitRecs := countRecs(recs, func(r audit.Record) bool {
			return strings.HasPrefix(r.Path, "/repo.git/") && r.Status == 200 && r.Identity == "agent" && strings.Contains(strings.Join(r.Credentials, ","), "git")
		})
		if gitRecs < 4 {
			t.Errorf("%d audit records of git fetching with the credential injected, want at least 4 (two clones over two ways)", gitRecs)
		}
	} else {
		t.Logf("up's output:\n%s", out)
	}
}

// makeRepo makes a bare repository name under dir with one commit holding
// README.
func makeRepo(t *testing.T, dir, name, readme string) {
	t.Helper()
	work := filepath.Join(dir, "work")
	if err := os.MkdirAll(work, 0o755); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(work, "README"), readme)
	gitEnv := append(os.Environ(), "GIT_AUTHOR_NAME=t", "GIT_AUTHOR_EMAIL=t@example.com", "GIT_COMMITTER_NAME=t", "GIT_COMMITTER_EMAIL=t@example.com", "GIT_CONFIG_NOSYSTEM=1", "HOME="+dir)
	for _, argv := range [][]string{
		{"git", "init", "-q", "-b", "main", work},
		{"git", "-C", work, "add", "README"},
		{"git", "-C", work, "commit", "-q", "-m", "one"},
		{"git", "clone", "-q", "--bare", work, filepath.Join(dir, name)},
	} {
		cmd := exec.Command(argv[0], argv[1:]...)
		cmd.Env = gitEnv
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("%s: %v\n%s", strings.Join(argv, " "), err, out)
		}
	}
}

// exitCode is a process's exit code from its Wait error.
func exitCode(err error) int {
	if ee, ok := err.(*exec.ExitError); ok {
		return ee.ExitCode()
	}
	if err != nil {
		return -1
	}
	return 0
}
