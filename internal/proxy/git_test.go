package proxy

import (
	"encoding/base64"
	"net/http"
	"net/http/cgi"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/slapenir/slapenir/internal/pki/certfile"
)

const gitBackend = "/usr/lib/git-core/git-http-backend"

// TestGitOverInterceptedTLS clones and pushes with the real git over HTTPS,
// through the proxy, against a real smart-HTTP server (git http-backend behind
// net/http/cgi) that demands Basic auth with the real token. The agent's
// remote URL carries only the placeholder.
func TestGitOverInterceptedTLS(t *testing.T) {
	gitBin, err := exec.LookPath("git")
	if err != nil {
		t.Skip("git is not installed (apt-get install git)")
	}
	if _, err := os.Stat(gitBackend); err != nil {
		t.Skipf("%s is missing (apt-get install git)", gitBackend)
	}
	root := t.TempDir()
	var auditFileForDebug string
	run := func(dir string, env []string, args ...string) string {
		t.Helper()
		cmd := exec.Command(gitBin, args...)
		cmd.Dir = dir
		cmd.Env = append(append(os.Environ(), "GIT_TERMINAL_PROMPT=0", "GIT_CONFIG_NOSYSTEM=1", "HOME="+root,
			"GIT_AUTHOR_NAME=a", "GIT_AUTHOR_EMAIL=a@example.com", "GIT_COMMITTER_NAME=a", "GIT_COMMITTER_EMAIL=a@example.com"), env...)
		out, err := cmd.CombinedOutput()
		if err != nil {
			if recs, _ := os.ReadFile(auditFileForDebug); len(recs) > 0 {
				t.Logf("audit:\n%s", recs)
			}
			t.Fatalf("git %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return string(out)
	}
	repos := filepath.Join(root, "srv")
	os.MkdirAll(repos, 0o755)
	run(repos, nil, "init", "--bare", "-b", "main", "repo.git")
	run(filepath.Join(repos, "repo.git"), nil, "config", "http.receivepack", "true")
	seed := filepath.Join(root, "seed")
	run(root, nil, "init", "-b", "main", seed)
	os.WriteFile(filepath.Join(seed, "README"), []byte("hello\n"), 0o644)
	run(seed, nil, "add", "README")
	run(seed, nil, "commit", "-m", "first")
	run(seed, nil, "push", filepath.Join(repos, "repo.git"), "main")

	wantAuth := "Basic " + base64.StdEncoding.EncodeToString([]byte("x-access-token:"+realToken))
	backend := &cgi.Handler{Path: gitBackend, Env: []string{"GIT_PROJECT_ROOT=" + repos, "GIT_HTTP_EXPORT_ALL=1"}}
	up := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != wantAuth {
			w.Header().Set("WWW-Authenticate", `Basic realm="git"`)
			http.Error(w, "authentication required", http.StatusUnauthorized)
			return
		}
		r.Header.Set("Remote-User", "x-access-token")
		backend.ServeHTTP(w, r)
	}))
	defer up.Close()

	p, ca := credProxyIntercepting(t, up)
	auditFileForDebug = p.auditFile
	caFile := filepath.Join(root, "intercept-ca.pem")
	os.WriteFile(caFile, certfile.EncodeCerts(ca.Root), 0o644)

	proxyEnv := []string{"HTTPS_PROXY=http://" + p.addr, "https_proxy=http://" + p.addr, "NO_PROXY=", "no_proxy=", "GIT_SSL_CAINFO=" + caFile}
	remote := strings.Replace(up.URL, "https://", "https://x-access-token:DUMMY_GITHUB@", 1) + "/repo.git"
	work := filepath.Join(root, "work")
	out := run(root, proxyEnv, "clone", remote, work)
	assertNoSecret(t, "git clone output", []byte(out))
	if b, err := os.ReadFile(filepath.Join(work, "README")); err != nil || string(b) != "hello\n" {
		t.Fatalf("clone through the proxy: %q %v", b, err)
	}
	os.WriteFile(filepath.Join(work, "CHANGE"), []byte("pushed through the proxy\n"), 0o644)
	run(work, nil, "add", "CHANGE")
	run(work, nil, "commit", "-m", "second")
	out = run(work, proxyEnv, "push", "origin", "main")
	assertNoSecret(t, "git push output", []byte(out))
	if log := run(filepath.Join(repos, "repo.git"), nil, "log", "--oneline"); !strings.Contains(log, "second") {
		t.Fatalf("push did not reach the server: %s", log)
	}
	cfgFile, _ := os.ReadFile(filepath.Join(work, ".git", "config"))
	assertNoSecret(t, "the agent's git config", cfgFile)
	var injected int
	for _, r := range readRecords(t, p.auditFile) {
		if r.Mode == "intercept" && len(r.Credentials) == 1 {
			injected++
		}
	}
	if injected == 0 {
		t.Fatal("no audit record names the injected credential")
	}
}
