package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/slapenir/slapenir/internal/audit"
	"github.com/slapenir/slapenir/internal/testutil/poll"
	"github.com/slapenir/slapenir/internal/testutil/syncbuf"
)

// auditTestLog writes n records through a real Logger that rotates small
// files, and returns the current file's name.
func auditTestLog(t *testing.T, n int) string {
	t.Helper()
	name := filepath.Join(t.TempDir(), "audit.jsonl")
	l, err := audit.Open(audit.Options{File: name, MaxBytes: 3000, MaxBackups: 10})
	if err != nil {
		t.Fatal(err)
	}
	for i := 1; i <= n; i++ {
		r := &audit.Record{
			Time: time.Now().Add(time.Duration(i-n) * time.Minute), RequestID: fmt.Sprintf("r%03d", i),
			Client: "127.0.0.1:5000", Mode: "forward", Method: "GET", Scheme: "http",
			Host: fmt.Sprintf("h%d.example.com", i%3), Port: 80, Path: "/x", Decision: "allow",
			Reason: "default allow", Status: 200,
		}
		if i%4 == 0 {
			r.Decision, r.Reason, r.Status = "deny", "deny list", 403
		}
		if err := l.Write(r); err != nil {
			t.Fatal(err)
		}
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	return name
}

func auditRun(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code = auditMain(args, &out, &errOut)
	return code, out.String(), errOut.String()
}

func TestAuditVerifyOnRotatedFiles(t *testing.T) {
	name := auditTestLog(t, 30)
	files, _ := filepath.Glob(name + "*") // newest first, as a shell lists them
	if len(files) < 3 {
		t.Fatalf("want several rotated files, got %v", files)
	}
	code, out, errOut := auditRun(t, append([]string{"verify"}, files...)...)
	if code != 0 || errOut != "" {
		t.Fatalf("verify: exit %d, stderr %q", code, errOut)
	}
	if !strings.HasSuffix(out, name+": "+fmt.Sprint(len(strings.Split(strings.TrimSpace(auditReadFile(t, name)), "\n")))+" records, chain ok (unkeyed SHA-256, which anyone who can write the file can recompute; give --key to check it was not rewritten)\n") {
		t.Fatalf("verify output does not end with the current file's line:\n%s", out)
	}
	if got := strings.Count(out, ", chain ok ("); got != len(files) {
		t.Fatalf("%d ok lines for %d files:\n%s", got, len(files), out)
	}
}

func TestAuditVerifyReportsTheFirstBrokenLine(t *testing.T) {
	name := auditTestLog(t, 5)
	lines := strings.Split(auditReadFile(t, name), "\n")
	lines[2] = strings.Replace(lines[2], `"status":200`, `"status":201`, 1)
	if err := os.WriteFile(name, []byte(strings.Join(lines, "\n")), 0o600); err != nil {
		t.Fatal(err)
	}
	code, out, _ := auditRun(t, "verify", name)
	if code != 1 || !strings.Contains(out, name+":3: chain broken: content does not match its SHA-256 hash") {
		t.Fatalf("verify of an edited file: exit %d, output:\n%s", code, out)
	}
}

func TestAuditShowWithFlagsAfterTheFiles(t *testing.T) {
	name := auditTestLog(t, 30)
	files, _ := filepath.Glob(name + "*")
	code, out, errOut := auditRun(t, append(append([]string{"show"}, files...), "--decision", "deny", "--host", "h0.*", "--since", "2h")...)
	if code != 0 {
		t.Fatalf("show: exit %d: %s", code, errOut)
	}
	// Records 12 and 24 are denied and go to h0.
	want := []string{"id=r012 ", "id=r024 "}
	got := strings.Split(strings.TrimSpace(out), "\n")
	if len(got) != len(want) {
		t.Fatalf("show printed %d lines, want %d:\n%s", len(got), len(want), out)
	}
	for i := range want {
		if !strings.Contains(got[i], want[i]) || !strings.Contains(got[i], " deny forward GET http://h0.example.com:80/x 403 ") {
			t.Errorf("line %d = %q", i+1, got[i])
		}
	}

	code, out, _ = auditRun(t, "show", "--json", "--decision=deny", name)
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		if code != 0 || !strings.HasPrefix(line, `{"seq":`) || !strings.Contains(line, `"decision":"deny"`) {
			t.Fatalf("show --json: exit %d, line %q", code, line)
		}
	}
}

func TestAuditStats(t *testing.T) {
	name := auditTestLog(t, 12)
	files, _ := filepath.Glob(name + "*")
	code, out, errOut := auditRun(t, append([]string{"stats", "--top", "1"}, files...)...)
	if code != 0 {
		t.Fatalf("stats: exit %d: %s", code, errOut)
	}
	for _, want := range []string{"records: 12\n", "requests: 12 ", "decisions:\n         9  allow\n         3  deny\n", "reasons (top 1):\n         9  default allow\nhosts"} {
		if !strings.Contains(out, want) {
			t.Errorf("stats output lacks %q:\n%s", want, out)
		}
	}
}

// auditForwardedLog writes, through a real Logger, what the proxy writes for
// n forwarded requests (a write-ahead start record, then the outcome, the
// first carrying a placeholder left in a location its credential does not
// inject into), then the start of one more request that never ended.
func auditForwardedLog(t *testing.T, n int) string {
	t.Helper()
	name := filepath.Join(t.TempDir(), "audit.jsonl")
	l, err := audit.Open(audit.Options{File: name})
	if err != nil {
		t.Fatal(err)
	}
	write := func(r audit.Record) {
		if err := l.Write(&r); err != nil {
			t.Fatal(err)
		}
	}
	for i := 1; i <= n+1; i++ {
		r := audit.Record{RequestID: fmt.Sprintf("r%03d", i), Client: "127.0.0.1:5000", Mode: "forward", Method: "GET", Scheme: "http",
			Host: "api.example.com", Port: 80, Path: "/x", Decision: "allow", Reason: "allow list"}
		start := r
		start.Phase = audit.PhaseStart
		write(start)
		if i > n {
			break
		}
		r.Status, r.BytesOut = 200, 10
		if i == 1 {
			r.Placeholders = []audit.PlaceholderNote{{Credential: "github", Problem: "placeholder_location", Location: "query"}}
		}
		write(r)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	return name
}

// TestAuditShowPlaceholderNotes: the readable line names the placeholders
// forwarded unchanged, and where, as the JSON line does.
func TestAuditShowPlaceholderNotes(t *testing.T) {
	name := auditForwardedLog(t, 1)
	code, out, errOut := auditRun(t, "show", name)
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if code != 0 || len(lines) != 3 {
		t.Fatalf("show: exit %d, stderr %q:\n%s", code, errOut, out)
	}
	if !strings.Contains(lines[1], ` placeholders="github:placeholder_location@query"`) {
		t.Fatalf("the outcome line lacks its placeholder note: %q", lines[1])
	}
	if strings.Contains(lines[0], "placeholders=") {
		t.Fatalf("a line without placeholder notes shows some: %q", lines[0])
	}
}

// TestAuditStatsCountsEachRequestOnce: a forwarded request's write-ahead
// start and its outcome are two records but one request, one decision.
func TestAuditStatsCountsEachRequestOnce(t *testing.T) {
	name := auditForwardedLog(t, 15)
	code, out, errOut := auditRun(t, "stats", name)
	if code != 0 {
		t.Fatalf("stats: exit %d: %s", code, errOut)
	}
	for _, want := range []string{"records: 31\n", "requests: 16 ", "of which 1 forwarded with no outcome record", "decisions:\n        16  allow\nreasons", "bytes in (client → upstream): 0, out (upstream → client): 150\n", "        16  api.example.com\n"} {
		if !strings.Contains(out, want) {
			t.Errorf("stats output lacks %q:\n%s", want, out)
		}
	}
}

func TestAuditReadsTheFileNamedByAProxyConfig(t *testing.T) {
	name := auditTestLog(t, 30)
	cfg := filepath.Join(t.TempDir(), "proxy.yaml")
	yaml := fmt.Sprintf("audit:\n  file: %s\n  max_backups: 10\n", name)
	if err := os.WriteFile(cfg, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	code, out, errOut := auditRun(t, "verify", "--config", cfg)
	files, _ := filepath.Glob(name + "*")
	if code != 0 || strings.Count(out, "chain ok") != len(files) {
		t.Fatalf("verify --config: exit %d, stderr %q, output:\n%s", code, errOut, out)
	}
}

func TestAuditUsageErrors(t *testing.T) {
	for _, args := range [][]string{
		{},
		{"frobnicate"},
		{"show"},
		{"verify"},
		{"show", "--since", "yesterday", "x"},
		{"show", "--host", "[a-", "x"},
		{"stats", "--nope", "x"},
	} {
		if code, _, errOut := auditRun(t, args...); code != 2 || errOut == "" {
			t.Errorf("audit %q: exit %d, stderr %q; want exit 2 with an explanation", args, code, errOut)
		}
	}
	if code, _, errOut := auditRun(t, "verify", filepath.Join(t.TempDir(), "missing")); code != 1 || !strings.Contains(errOut, "missing") {
		t.Errorf("verify of a missing file: exit %d, stderr %q", code, errOut)
	}
}

func auditReadFile(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// startAuditServe runs `slapenir audit serve` with args on a free loopback
// address until the test ends, and returns the address and its output once
// it answers /healthz.
func startAuditServe(t *testing.T, args ...string) (string, *exec.Cmd, *syncbuf.Buffer) {
	t.Helper()
	bin := buildBinary(t)
	addr := freeLoopback(t)
	cmd := exec.Command(bin, append([]string{"audit", "serve", "--listen", addr}, args...)...)
	out := new(syncbuf.Buffer)
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	getOnceUp(t, "http://"+addr+"/healthz")
	// The line is written before serving starts, but it reaches out through
	// exec's copying goroutine, which may not have run yet.
	poll.Until(t, func() bool { return strings.Contains(out.String(), "serving the audit log") })
	return addr, cmd, out
}

// TestAuditServe runs `slapenir audit serve` on rotated files as a user
// would: it prints the URL with the run's token (and the token nowhere
// else), that URL logs a browser in, the records of every file are served
// until SIGTERM; without the token, or at another Host, nothing is.
func TestAuditServe(t *testing.T) {
	name := auditTestLog(t, 40)
	files, _ := filepath.Glob(name + "*")
	addr, cmd, out := startAuditServe(t, files...)
	m := regexp.MustCompile(`serving the audit log .* at (http://` + regexp.QuoteMeta(addr) + `/\?token=([A-Za-z0-9_-]{40,})) \(Ctrl-C to stop\)\n`).FindStringSubmatch(out.String())
	if m == nil {
		t.Fatalf("no URL with a token in the output %q", out.String())
	}
	tokenURL, token := m[1], m[2]
	jar, _ := cookiejar.New(nil)
	browser := &http.Client{Jar: jar}
	page := auditGet(t, browser, tokenURL, nil)
	if !strings.Contains(page, "<title>SLAPENIR audit</title>") {
		t.Fatalf("the printed URL shows %.200q", page)
	}
	var got struct{ Records []audit.Record }
	json.Unmarshal([]byte(auditGet(t, browser, "http://"+addr+"/api/records", nil)), &got)
	if len(got.Records) != 40 || got.Records[0].Seq != 1 || got.Records[39].Seq != 40 {
		t.Fatalf("served %d records across %d files, want all 40 in order", len(got.Records), len(files))
	}
	if resp, err := http.Get("http://" + addr + "/api/records"); err != nil || resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("records without the token: %v %v, want 401", resp.Status, err)
	}
	req, _ := http.NewRequest("GET", "http://"+addr+"/api/records", nil)
	req.Host = "evil.example"
	req.Header.Set("Authorization", "Bearer "+token)
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != http.StatusForbidden {
		t.Fatalf("records at Host evil.example: %v %v, want 403", resp.Status, err)
	}
	cmd.Process.Signal(syscall.SIGTERM)
	if err := cmd.Wait(); err != nil {
		t.Fatalf("audit serve on SIGTERM: %v\n%s", err, out.String())
	}
	if n := strings.Count(out.String(), token); n != 1 {
		t.Errorf("the token appears %d times in the output, want once (the URL): %q", n, out.String())
	}
}

// TestAuditServeTokenFileAndAllowHost: for scripts, --token-file gives the
// token (sent as a bearer header) and is not printed; --allow-host adds a
// name the page answers to, and no other.
func TestAuditServeTokenFileAndAllowHost(t *testing.T) {
	name := auditTestLog(t, 5)
	tokenFile := filepath.Join(t.TempDir(), "token")
	token := "s3cret-token-from-a-file-0123456789"
	os.WriteFile(tokenFile, []byte(token+"\n"), 0o600)
	addr, _, out := startAuditServe(t, name, "--token-file", tokenFile, "--allow-host", "audit.example.com")
	if strings.Contains(out.String(), token) || !strings.Contains(out.String(), "http://"+addr+"/ (the token is in "+tokenFile+")") {
		t.Fatalf("output %q: want the URL without the token, naming the file", out.String())
	}
	for host, want := range map[string]int{"audit.example.com": 200, "AUDIT.example.com.": 200, addr: 200, "evil.example.com": 403, "example.com": 403} {
		req, _ := http.NewRequest("GET", "http://"+addr+"/api/records", nil)
		req.Host = host
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Errorf("Host %s: %d, want %d", host, resp.StatusCode, want)
		}
	}
	req, _ := http.NewRequest("GET", "http://"+addr+"/api/records", nil)
	req.Header.Set("Authorization", "Bearer "+token+"x")
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("a wrong bearer token: %v %v, want 401", resp.Status, err)
	}
}

// TestAuditServeRefusesBadTokenFiles: an empty or short token file stops
// audit serve with a message that names the problem and not the content.
func TestAuditServeRefusesBadTokenFiles(t *testing.T) {
	name := auditTestLog(t, 5)
	dir := t.TempDir()
	empty, short := filepath.Join(dir, "empty"), filepath.Join(dir, "short")
	os.WriteFile(empty, []byte("\n"), 0o600)
	os.WriteFile(short, []byte("hunter2\n"), 0o600)
	for file, want := range map[string]string{empty: "is empty", short: "want at least 16", filepath.Join(dir, "missing"): "no such file"} {
		var stdout, stderr bytes.Buffer
		code := auditMain([]string{"serve", "--listen", "127.0.0.1:0", "--token-file", file, name}, &stdout, &stderr)
		if code == 0 || !strings.Contains(stderr.String(), want) || strings.Contains(stderr.String(), "hunter2") {
			t.Errorf("--token-file %s: exit %d, %q; want a failure saying %q", file, code, stderr.String(), want)
		}
	}
}

// auditGet GETs url with client and returns the body of a 200.
func auditGet(t *testing.T, client *http.Client, url string, header http.Header) string {
	t.Helper()
	req, _ := http.NewRequest("GET", url, nil)
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s %.200q", url, resp.Status, b)
	}
	return string(b)
}
