package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/slapenir/slapenir/internal/audit"
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
	for _, want := range []string{"records: 12\n", "decisions:\n         9  allow\n         3  deny\n", "reasons (top 1):\n         9  default allow\nhosts"} {
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

// TestAuditServe runs `slapenir audit serve` on rotated files as a user
// would: the page and the records of every file are served until SIGTERM.
func TestAuditServe(t *testing.T) {
	name := auditTestLog(t, 40)
	files, _ := filepath.Glob(name + "*")
	bin := buildBinary(t)
	addr := freeLoopback(t)
	cmd := exec.Command(bin, append([]string{"audit", "serve", "--listen", addr}, files...)...)
	var out syncbuf.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	page := getOnceUp(t, "http://"+addr+"/")
	if !strings.Contains(page, "<title>SLAPENIR audit</title>") || !strings.Contains(out.String(), "serving the audit log") {
		t.Fatalf("page %.200q, output %q", page, out.String())
	}
	resp, err := http.Get("http://" + addr + "/api/records")
	if err != nil {
		t.Fatal(err)
	}
	var got struct{ Records []audit.Record }
	json.NewDecoder(resp.Body).Decode(&got)
	resp.Body.Close()
	if len(got.Records) != 40 || got.Records[0].Seq != 1 || got.Records[39].Seq != 40 {
		t.Fatalf("served %d records across %d files, want all 40 in order", len(got.Records), len(files))
	}
	cmd.Process.Signal(syscall.SIGTERM)
	if err := cmd.Wait(); err != nil {
		t.Fatalf("audit serve on SIGTERM: %v\n%s", err, out.String())
	}
}
