package e2e

import (
	"crypto/rand"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/slapenir/slapenir/internal/testutil/realollama"
)

// echoContainer is a plain HTTP upstream on the outside network (Python's
// http.server in the Debian base) that prints the Authorization header it
// receives and echoes it back: where the proxy injects a credential's
// value, and what it must redact on the way back.
const echoContainer = "slapenir-e2e-echo"

const echoServer = `
import http.server
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        auth = self.headers.get("Authorization", "")
        print("echo: " + self.path + " Authorization=" + auth, flush=True)
        body = ("you sent " + auth).encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
http.server.HTTPServer(("", 8080), H).serve_forever()
`

// stackClone is what a fresh clone holds for the compose path, in a
// directory of its own: docker-compose.yml, .env from .env.example (as the
// README says to make it), and proxy/ (mounted into the proxy), plus a
// second compose file that only adds the echo upstream.
type stackClone struct {
	dir    string
	cli    composeCLI
	ollama stackOllama
	token  string // GITHUB_TOKEN in .env: the real value, never the agent's
}

// stackOllama is the Ollama a stack is pointed at (its OLLAMA_HOST and
// OLLAMA_MODEL in .env).
type stackOllama struct {
	host, model string
	real        bool
}

// fakeOllama is the compose file's own fake (profile fake-ollama), on the
// outside network.
var fakeOllama = stackOllama{host: "ollama:11434", model: "qwen2.5-coder:7b"}

// realOllamaOnHost starts a real Ollama (internal/testutil/realollama)
// on this machine, listening on the docker0 address as the README tells a
// Linux user to, for the proxy to reach as host.docker.internal. Where it
// cannot be built here, the fake stands in (and the log says so).
func realOllamaOnHost(t *testing.T) stackOllama {
	t.Helper()
	ip := docker0Address()
	if ip == "" {
		t.Log("no IPv4 address on docker0: the fake Ollama stands in for the real one")
		return fakeOllama
	}
	built := false
	t.Run("the real Ollama builds here", func(t *testing.T) {
		realollama.Binary(t)
		built = true
	})
	if !built {
		t.Log("the real Ollama cannot be built here: the fake Ollama stands in for it")
		return fakeOllama
	}
	srv := realollama.Start(t, realollama.Options{Addr: ip + ":0"})
	_, port, _ := net.SplitHostPort(srv.Addr)
	t.Logf("a real Ollama %s with %s listens on %s (docker0)", realollama.Version, realollama.Model, srv.Addr)
	return stackOllama{host: "host.docker.internal:" + port, model: realollama.Model, real: true}
}

// docker0Address is the IPv4 address of the docker0 bridge, which
// host.docker.internal (host-gateway) names.
func docker0Address() string {
	ifc, err := net.InterfaceByName("docker0")
	if err != nil {
		return ""
	}
	addrs, _ := ifc.Addrs()
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok && n.IP.To4() != nil {
			return n.IP.String()
		}
	}
	return ""
}

func newStackClone(t *testing.T, c composeCLI, o stackOllama) *stackClone {
	t.Helper()
	dir := t.TempDir()
	// Readable by the proxy's uid 65532 through the bind mount, as a
	// clone's files are.
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	copyFile(t, "../docker-compose.yml", filepath.Join(dir, "docker-compose.yml"), 0o644)
	if err := os.Mkdir(filepath.Join(dir, "proxy"), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"proxy.yaml", "proxy-services.yaml"} {
		copyFile(t, filepath.Join("../proxy", f), filepath.Join(dir, "proxy", f), 0o644)
	}
	s := &stackClone{dir: dir, cli: c, ollama: o, token: "ghp_" + strings.ToUpper(rand.Text())[:20] + "e2eReal" + rand.Text()[:9]}
	// cp .env.example .env, then what a user edits: the fake Ollama (this
	// machine has no real one for containers), their token, and no Aider
	// (no PyPI).
	env, err := os.ReadFile("../.env.example")
	if err != nil {
		t.Fatal(err)
	}
	edited := string(env)
	for key, value := range map[string]string{"OLLAMA_HOST": o.host, "OLLAMA_MODEL": o.model, "GITHUB_TOKEN": s.token, "INSTALL_AIDER": "false"} {
		rx := regexp.MustCompile(`(?m)^` + key + `=.*$`)
		if !rx.MatchString(edited) {
			t.Fatalf(".env.example has no %s= line to set", key)
		}
		edited = rx.ReplaceAllLiteralString(edited, key+"="+value)
	}
	writeFile(t, filepath.Join(dir, ".env"), edited)
	if o.host != fakeOllama.host && o.host != "host.docker.internal:11434" {
		// An Ollama on another port: its host:port in the policy, as
		// proxy.yaml's comment says.
		editFile(t, filepath.Join(dir, "proxy", "proxy.yaml"), `private_allow: ["host.docker.internal:11434"`, `private_allow: ["`+o.host+`", "host.docker.internal:11434"`)
	}
	writeFile(t, filepath.Join(dir, "docker-compose.e2e.yml"), fmt.Sprintf(`services:
  echo:
    image: %s
    container_name: %s
    command: ["python3", "-c", %q]
    networks: [outside]
`, testBaseImage, echoContainer, echoServer))
	return s
}

// editFile replaces old, which must be there, with repl in the file.
func editFile(t *testing.T, path, old, repl string) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), old) {
		t.Fatalf("%s has no %q to edit", path, old)
	}
	if err := os.WriteFile(path, []byte(strings.Replace(string(b), old, repl, 1)), 0o644); err != nil {
		t.Fatal(err)
	}
}

// compose runs the clone's Compose command with the tests' image tags.
func (s *stackClone) compose(args ...string) (string, error) {
	argv := append(append([]string{}, s.cli.argv...), "-p", composeProject, "-f", "docker-compose.yml", "-f", "docker-compose.e2e.yml",
		"--profile", "fake-ollama", "--profile", "two-agents")
	cmd := exec.Command(argv[0], append(argv[1:], args...)...)
	cmd.Dir = s.dir
	// The shell's variables win over .env in Compose: none of this
	// machine's may leak in.
	cmd.Env = append(append(envWithout("OLLAMA_HOST", "OLLAMA_MODEL", "GITHUB_TOKEN", "INSTALL_AIDER", "GO_IMAGE", "BASE_IMAGE", "DOCKER_HOST"), "SLAPENIR_AGENT_IMAGE="+testAgentImage, "SLAPENIR_PROXY_IMAGE="+testProxyImage,
		"SLAPENIR_CA_IMAGE="+testCAImage), s.cli.env...)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// agentShell runs script in the seed's `docker exec -it slapenir-agent
// bash` (an interactive bash whose .bashrc makes it the agent's shell).
func agentShell(t *testing.T, script string) string {
	t.Helper()
	sh := exec.Command("docker", "exec", "-i", "slapenir-agent", "bash", "-i")
	sh.Stdin = strings.NewReader(script + "\nexit\n")
	out, err := sh.CombinedOutput()
	if err != nil {
		t.Errorf("docker exec -i slapenir-agent bash -i: %v\n%s", err, out)
	}
	return string(out)
}

// checkPlaceholders: the agent holds the placeholder of the credential in
// .env, in its service's environment and in the interactive shell, and
// the value nowhere.
func (s *stackClone) checkPlaceholders(t *testing.T) {
	t.Helper()
	waitLogs(t, "slapenir-agent", `^\[placeholders\] exported 1 placeholder\(s\): GITHUB_TOKEN \(github\)$`, 30*time.Second)
	if out := agentShell(t, `echo "tok=$GITHUB_TOKEN uid=$(id -u)"`); !strings.Contains(out, "tok=DUMMY_GITHUB uid=1000") {
		t.Errorf("echo $GITHUB_TOKEN in docker exec -it slapenir-agent bash: want DUMMY_GITHUB as uid 1000:\n%s", out)
	}
	// The agent service itself (slapenir agent, started by init after the
	// oneshot) has it in its environment. (As agent: reading another
	// user's /proc/PID/environ needs CAP_SYS_PTRACE, which root lacks here.)
	out, err := exec.Command("docker", "exec", "-u", "agent", "slapenir-agent", "sh", "-c",
		`for p in $(pgrep -f '^slapenir agent'); do tr '\0' '\n' < /proc/$p/environ | grep '^GITHUB_TOKEN='; done`).CombinedOutput()
	if err != nil || strings.TrimSpace(string(out)) != "GITHUB_TOKEN=DUMMY_GITHUB" {
		t.Errorf("the agent service's GITHUB_TOKEN: %v %q, want DUMMY_GITHUB", err, out)
	}
	// The real value is nowhere in the agent: not in its files, its
	// processes' environments, its container's configuration or its log.
	for _, user := range []string{"root", "agent"} {
		out, _ = exec.Command("docker", "exec", "-u", user, "slapenir-agent", "sh", "-c",
			`grep -rl -- "$0" /home /run /etc /tmp /proc/[0-9]*/environ 2>/dev/null`, s.token).CombinedOutput()
		if strings.TrimSpace(string(out)) != "" {
			t.Errorf("the real token is in the agent's %s", out)
		}
	}
	inspect := docker(t, "inspect", "slapenir-agent")
	logs, _ := exec.Command("docker", "logs", "slapenir-agent").CombinedOutput()
	if strings.Contains(inspect, s.token) || strings.Contains(string(logs), s.token) {
		t.Errorf("the real token is in the agent container's configuration or log")
	}
	plogs, _ := exec.Command("docker", "logs", "slapenir-proxy").CombinedOutput()
	if strings.Contains(string(plogs), s.token) {
		t.Errorf("the proxy logged the real token")
	}
}

// checkLiveConfig: proxy/proxy.yaml is mounted, not baked in: an edit
// while the stack runs (saved by rename, as editors do) opens the echo
// host, denies a path on it and lets the github credential be injected
// there, all without a restart; the echo host receives the real value, the
// agent sees it nowhere.
func (s *stackClone) checkLiveConfig(t *testing.T) {
	t.Helper()
	through := func(path string) string {
		return agentShell(t, `curl -s -m 10 -w ' HTTP=%{http_code}' -x http://127.0.0.1:3128 -H "Authorization: Bearer $GITHUB_TOKEN" http://echo:8080`+path)
	}
	if out := through("/before"); !strings.Contains(out, " HTTP=403") || !strings.Contains(out, "private_address") {
		t.Fatalf("before the edit the echo host must be refused as a private address:\n%s", out)
	}
	cfg := filepath.Join(s.dir, "proxy", "proxy.yaml")
	b, err := os.ReadFile(cfg)
	if err != nil {
		t.Fatal(err)
	}
	edited := string(b)
	for old, repl := range map[string]string{
		`"ollama:11434"]`: `"ollama:11434", "echo:8080"]
  deny:
    - {host: echo, paths: ["/forbidden/**"]}`,
		`hosts: ["github.com", "*.github.com", "*.githubusercontent.com"]`: `hosts: ["github.com", "*.github.com", "*.githubusercontent.com", "echo:8080"]
      plaintext_http: true   # the test's echo host is plain HTTP
    - name: echo-file
      file: /etc/slapenir/secrets/echo_token
      agent_env: ECHO_TOKEN
      placeholder: ECHO_PLACEHOLDER_1
      hosts: ["echo:8080"]
      plaintext_http: true`,
	} {
		if !strings.Contains(edited, old) {
			t.Fatalf("proxy/proxy.yaml has no %q to edit", old)
		}
		edited = strings.Replace(edited, old, repl, 1)
	}
	// A path rule is judged inside the request, so the proxy must see
	// it: the echo host's tunnels are intercepted (a plain-HTTP request is
	// seen anyway).
	edited += "intercept:\n  hosts: [\"echo\"]\n"
	// A credential kept as a file in proxy/secrets/, readable by the
	// proxy's uid (docs/containers.md).
	secret := filepath.Join(s.dir, "proxy", "secrets", "echo_token")
	fileValue := "file-value-one-" + rand.Text()
	if err := os.MkdirAll(filepath.Dir(secret), 0o755); err != nil {
		t.Fatal(err)
	}
	writeFile(t, secret, fileValue+"\n")
	if err := os.Chmod(secret, 0o644); err != nil {
		t.Fatal(err)
	}
	writeFile(t, cfg+".new", edited)
	if err := os.Chmod(cfg+".new", 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(cfg+".new", cfg); err != nil {
		t.Fatal(err)
	}
	waitLogs(t, "slapenir-proxy", `configuration reloaded`, 15*time.Second)
	out := through("/hello")
	if !strings.Contains(out, " HTTP=200") || strings.Contains(out, s.token) {
		t.Errorf("through the proxy after the edit: want 200 without the real value in the answer:\n%s", out)
	}
	elogs := docker(t, "logs", echoContainer)
	if !strings.Contains(elogs, "echo: /hello Authorization=Bearer "+s.token) {
		t.Errorf("the echo host did not receive the real value in place of DUMMY_GITHUB:\n%s", elogs)
	}
	if out := through("/forbidden/x"); !strings.Contains(out, " HTTP=403") {
		t.Errorf("the deny rule added while running does not refuse /forbidden/x:\n%s", out)
	}
	if strings.Contains(docker(t, "logs", echoContainer), "/forbidden/") {
		t.Errorf("the denied request reached the echo host")
	}
	// The credential added while running reaches a shell at once with
	// eval "$(slapenir certs placeholders)"; its file's new value reaches
	// the proxy on docker kill -s HUP slapenir-proxy.
	viaFile := func() string {
		return agentShell(t, `eval "$(slapenir certs placeholders)"; curl -s -m 10 -w ' HTTP=%{http_code}' -x http://127.0.0.1:3128 -H "Authorization: Bearer $ECHO_TOKEN" http://echo:8080/file`)
	}
	if out := viaFile(); !strings.Contains(out, " HTTP=200") || !strings.Contains(docker(t, "logs", echoContainer), "echo: /file Authorization=Bearer "+fileValue) {
		t.Errorf("the file credential added while running was not injected for ECHO_TOKEN:\n%s", out)
	}
	rotated := "file-value-two-" + rand.Text()
	writeFile(t, secret+".new", rotated+"\n")
	if err := os.Chmod(secret+".new", 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(secret+".new", secret); err != nil {
		t.Fatal(err)
	}
	docker(t, "kill", "-s", "HUP", "slapenir-proxy")
	waitLogs(t, "slapenir-proxy", `configuration reloaded.*why=SIGHUP`, 15*time.Second)
	if out := viaFile(); !strings.Contains(out, " HTTP=200") || !strings.Contains(docker(t, "logs", echoContainer), "echo: /file Authorization=Bearer "+rotated) {
		t.Errorf("after docker kill -s HUP slapenir-proxy the rotated file value was not injected:\n%s", out)
	}
	if n := strings.TrimSpace(docker(t, "inspect", "--format", "{{.RestartCount}} {{.State.StartedAt}}", "slapenir-proxy")); !strings.HasPrefix(n, "0 ") {
		t.Errorf("the proxy container restarted: %s", n)
	}
}

// checkProxyNetworkView runs the README's troubleshooting command, the
// replacement for the seed's `docker exec slapenir-proxy curl …` (the
// proxy's image is scratch: no curl, no shell): curl from the agent's
// image in the proxy container's network namespace, which also shares its
// /etc/hosts (host.docker.internal).
func (s *stackClone) checkProxyNetworkView(t *testing.T) {
	t.Helper()
	readme := func(image, url string) *exec.Cmd {
		return exec.Command("docker", "run", "--rm", "--network", "container:slapenir-proxy", "--entrypoint", "curl", image,
			"-s", "--noproxy", "*", url)
	}
	// Word for word (with the tests' image tag): the host's Ollama. Here
	// nothing listens on the host's port 11434 for containers, so curl
	// resolves host.docker.internal (the proxy's extra_hosts) and is
	// refused (exit 7), or, where one does listen, gets its models.
	out, err := readme(testAgentImage, "http://host.docker.internal:11434/api/tags").CombinedOutput()
	if code := exitCode(err); code != 7 && !(code == 0 && strings.Contains(string(out), `"models"`)) {
		t.Errorf("the README's look from the proxy's network at host.docker.internal: exit %d (want 7, connection refused, or an answer) %s", code, out)
	}
	// And with the OLLAMA_HOST the test's .env sets: that Ollama answers.
	if out, err := readme(testAgentImage, "http://"+s.ollama.host+"/api/tags").CombinedOutput(); err != nil || !strings.Contains(string(out), s.ollama.model) {
		t.Errorf("the README's look from the proxy's network at %s: %v %s", s.ollama.host, err, out)
	}
}

// checkOptionC: the seed's `python3 /home/agent/scripts/ollama-proxy-helper.py &`
// starts the helper (on a port of its own here: the relay already serves
// the default 8765, which the script then says).
func (s *stackClone) checkOptionC(t *testing.T) {
	t.Helper()
	out := agentShell(t, `python3 /home/agent/scripts/ollama-proxy-helper.py 8799 >/tmp/helper.log 2>&1 &
for i in $(seq 50); do curl -s -m 2 http://127.0.0.1:8799/api/tags && break; sleep 0.2; done; echo; kill $!`)
	if !strings.Contains(out, s.ollama.model) {
		t.Errorf("python3 /home/agent/scripts/ollama-proxy-helper.py 8799 &: no answer on 8799:\n%s", out)
	}
	out = agentShell(t, `timeout 10 python3 /home/agent/scripts/ollama-proxy-helper.py; echo "exit=$?"`)
	t.Logf("python3 /home/agent/scripts/ollama-proxy-helper.py beside the running relay:\n%s", out)
	if !strings.Contains(out, "8765") || strings.Contains(out, "exit=0") {
		t.Errorf("the helper on the port the relay holds says nothing about it:\n%s", out)
	}
}

// checkRealOllama: the real server answers through the whole path —
// helper, relay, proxy — streaming token by token, in Ollama's own API
// and the OpenAI one, and ollama-verify did not take it for the fake.
func (s *stackClone) checkRealOllama(t *testing.T) {
	t.Helper()
	logs, _ := exec.Command("docker", "logs", "slapenir-agent").CombinedOutput()
	if strings.Contains(string(logs), "fake Ollama") {
		t.Errorf("ollama-verify took the real Ollama for the fake:\n%s", logs)
	}
	out, err := agentExec("curl", "-sfN", "-m", "60", "http://127.0.0.1:8765/api/chat", "-d",
		`{"model":"`+s.ollama.model+`","messages":[{"role":"user","content":"say hello"}],"options":{"num_predict":8}}`)
	if n := strings.Count(out, `"done":false`); err != nil || n < 2 || n > 8 || !strings.Contains(out, `"done":true`) {
		t.Errorf("a streamed /api/chat from the real Ollama through the helper: %v, %d chunks before done (want 2 to 8)\n%s", err, n, out)
	}
	out, err = agentExec("curl", "-sfN", "-m", "60", "http://127.0.0.1:8765/v1/chat/completions", "-H", "Content-Type: application/json", "-d",
		`{"model":"`+s.ollama.model+`","stream":true,"max_tokens":8,"messages":[{"role":"user","content":"say hello"}]}`)
	if n := strings.Count(out, "data: {"); err != nil || n < 2 || !strings.Contains(out, "data: [DONE]") {
		t.Errorf("a streamed /v1/chat/completions from the real Ollama through the helper: %v, %d events\n%s", err, n, out)
	}
	waitLogs(t, "slapenir-proxy", `"identity":"agent".*"host":"host.docker.internal".*"path":"/api/chat"`, 10*time.Second)
}
