package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// brokenConfigs live beside the config package's own tests, which check
// that each is refused; here we check exactly what the user sees.
const brokenConfigs = "../../internal/config/testdata"

func runCheckConfig(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code = checkConfig(args, &out, &errOut)
	return code, out.String(), errOut.String()
}

func TestCheckConfigBrokenFiles(t *testing.T) {
	cases := map[string][]string{
		"unknown_key.yaml": {`:4: unknown key "policy.alow" (did you mean "allow"?)`},
		"bad_enum.yaml":    {`:3: policy.mode: "enforcing" is not "enforce" or "report"`},
		"bad_glob.yaml": {
			`:4: policy.allow[1]: bad host glob "api-*.example.com": "*" may only be the whole host or the whole first label, as in "*.example.com"`,
			`:5: policy.allow[2]: bad host glob "example.com:http": port "http" is not a number`,
		},
		"bad_cidr.yaml": {
			`:4: policy.private_allow[1]: bad CIDR "10.0.0.0/33" (want an address range such as 172.17.0.0/16)`,
			`:5: policy.private_allow[2]: bad CIDR "300.1.2.3/8" (want an address range such as 172.17.0.0/16)`,
		},
		"bad_port.yaml": {
			`:4: policy.connect_ports[1]: port 0 out of range 1-65535`,
			`:5: policy.connect_ports[2]: port 70000 out of range 1-65535`,
		},
		"yaml_syntax.yaml": {`:4: YAML syntax error: did not find expected key`},
		// Value problems come with the type problems, in one run.
		"type_and_value.yaml": {
			`:2: policy.mode: "enforcing" is not "enforce" or "report"`,
			`:4: limits.max_tunnels: want a whole number, got "lots"`,
			`:6: limits.rate_burst: -5 must be at least 1 while rate_per_second is on`,
		},
		"wrong_type.yaml": {
			`:3: limits.max_tunnels: want a whole number, got "lots"`,
			`:4: limits.idle_timeout: want a duration such as 30s or 5m, got "5"`,
			`:6: audit.stdout: want true or false, got "maybe"`,
		},
	}
	files, _ := filepath.Glob(filepath.Join(brokenConfigs, "*.yaml"))
	if len(files) != len(cases) {
		t.Errorf("%d broken configs in %s, %d expected outputs: keep them in step", len(files), brokenConfigs, len(cases))
	}
	for file, want := range cases {
		path := filepath.Join(brokenConfigs, file)
		code, stdout, stderr := runCheckConfig(t, path)
		if code != 1 || stdout != "" {
			t.Errorf("%s: exit %d, stdout %q; want exit 1 and nothing on stdout", file, code, stdout)
		}
		got := strings.Split(strings.TrimSuffix(stderr, "\n"), "\n")
		if len(got) != len(want) {
			t.Errorf("%s: got problems\n%s\nwant %d", file, stderr, len(want))
			continue
		}
		for i := range want {
			if got[i] != path+want[i] {
				t.Errorf("%s: line %d is\n%s\nwant\n%s", file, i, got[i], path+want[i])
			}
		}
	}
}

// A file the configuration names that is not there fails the check, as it
// would fail the proxy's start; each is named with its line.
func TestCheckConfigMissingFiles(t *testing.T) {
	dir := t.TempDir()
	cert := filepath.Join(dir, "cert.pem")
	if err := os.WriteFile(cert, []byte("not read"), 0o644); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "proxy.yaml")
	os.WriteFile(path, []byte("tls:\n  cert: "+cert+"\n  key: "+dir+"/key.pem\n  client_ca: "+dir+"/ca.pem\nsecrets:\n  credentials:\n    - name: gh\n      file: "+dir+"/gh_token\n      hosts: [api.github.com]\n"), 0o644)
	code, stdout, stderr := runCheckConfig(t, path)
	if code != 1 || stdout != "" {
		t.Fatalf("exit %d, stdout %q; want 1 and nothing on stdout", code, stdout)
	}
	want := []string{
		path + `:3: tls.key: "` + dir + `/key.pem" cannot be read: no such file or directory`,
		path + `:4: tls.client_ca: "` + dir + `/ca.pem" cannot be read: no such file or directory`,
		path + `:8: secrets.credentials[0].file: "` + dir + `/gh_token" cannot be read: no such file or directory`,
	}
	if got := strings.TrimSuffix(stderr, "\n"); got != strings.Join(want, "\n") {
		t.Errorf("got\n%s\nwant\n%s", got, strings.Join(want, "\n"))
	}
}

func TestCheckConfigExample(t *testing.T) {
	path := "../../configs/proxy.example.yaml"
	code, stdout, stderr := runCheckConfig(t, path)
	if code != 0 || stderr != "" {
		t.Fatalf("exit %d, stderr %q", code, stderr)
	}
	for _, want := range []string{
		path + ": ok\n",
		"listen         :3000\n",
		"policy         default deny, mode enforce\n",
		"rules          8 allow, 1 deny, 2 private_allow; telemetry deny on (9 hosts)\n",
		"connect ports  443\n",
		"audit          file /var/log/slapenir/audit.jsonl\n",
		"roles          ci (agent-ci-*; default deny, dlp off); everyone else: default\n",
		"dlp            report (the default role)\n",
	} {
		if !strings.Contains(stdout, want) {
			t.Errorf("summary lacks %q:\n%s", want, stdout)
		}
	}
}

func TestCheckConfigUsageAndUnreadable(t *testing.T) {
	dir := t.TempDir()
	cases := []struct {
		name string
		args []string
		code int
		want string
	}{
		{"no file", nil, 2, "usage: slapenir check-config FILE"},
		{"two files", []string{"a", "b"}, 2, "usage: slapenir check-config FILE"},
		{"bad flag", []string{"--nope", "x"}, 2, "flag provided but not defined"},
		{"missing file", []string{filepath.Join(dir, "missing.yaml")}, 2, "cannot read " + filepath.Join(dir, "missing.yaml") + ": no such file or directory"},
		{"directory", []string{dir}, 2, "cannot read " + dir + ": is a directory"},
		{"help", []string{"-h"}, 0, "Exit status: 0 valid, 1 problems found, 2 usage error or unreadable file."},
	}
	if os.Geteuid() != 0 { // root reads a mode-000 file anyway
		unreadable := filepath.Join(dir, "secret.yaml")
		if err := os.WriteFile(unreadable, []byte("listen: :1\n"), 0o000); err != nil {
			t.Fatal(err)
		}
		cases = append(cases, struct {
			name string
			args []string
			code int
			want string
		}{"no permission", []string{unreadable}, 2, "permission denied"})
	}
	for _, c := range cases {
		code, _, stderr := runCheckConfig(t, c.args...)
		if code != c.code || !strings.Contains(stderr, c.want) {
			t.Errorf("%s: exit %d, stderr %q; want exit %d and %q", c.name, code, stderr, c.code, c.want)
		}
	}
}

func TestCheckConfigEmptyFileIsValid(t *testing.T) {
	path := filepath.Join(t.TempDir(), "empty.yaml")
	if err := os.WriteFile(path, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	code, stdout, _ := runCheckConfig(t, path)
	if code != 0 || !strings.Contains(stdout, "policy         default allow, mode enforce") {
		t.Errorf("empty file: exit %d\n%s", code, stdout)
	}
}

// TestCheckConfigNamesCredentialsNotValues: the summary lists each credential
// by name, source and hosts; the value is never read, let alone printed.
func TestCheckConfigNamesCredentialsNotValues(t *testing.T) {
	t.Setenv("GITHUB_TOKEN", "ghp_ThisValueMustNeverBePrinted0123456789")
	f := filepath.Join(t.TempDir(), "p.yaml")
	os.WriteFile(f, []byte("secrets:\n  credentials:\n    - name: github\n      env: GITHUB_TOKEN\n      hosts: [api.github.com]\n"), 0o600)
	var out, errOut bytes.Buffer
	if code := checkConfig([]string{f}, &out, &errOut); code != 0 {
		t.Fatalf("exit %d: %s", code, errOut.String())
	}
	if !strings.Contains(out.String(), "github (env GITHUB_TOKEN → api.github.com; injected in header, over TLS only)") || strings.Contains(out.String()+errOut.String(), "ThisValue") {
		t.Fatalf("summary:\n%s", out.String())
	}
}

// TestCheckConfigInjectLocations: the places a credential is injected into
// are listed, and an unknown or repeated one is a problem with its line.
func TestCheckConfigInjectLocations(t *testing.T) {
	f := filepath.Join(t.TempDir(), "p.yaml")
	os.WriteFile(f, []byte("secrets:\n  credentials:\n    - name: github\n      env: GITHUB_TOKEN\n      hosts: [api.github.com]\n      inject: [header, body]\n"), 0o600)
	var out, errOut bytes.Buffer
	if code := checkConfig([]string{f}, &out, &errOut); code != 0 || !strings.Contains(out.String(), "injected in header, body") {
		t.Fatalf("exit %d:\n%s%s", code, out.String(), errOut.String())
	}
	os.WriteFile(f, []byte("secrets:\n  credentials:\n    - name: github\n      env: GITHUB_TOKEN\n      hosts: [api.github.com]\n      inject:\n        - header\n        - cookie\n        - header\n"), 0o600)
	out.Reset()
	errOut.Reset()
	if code := checkConfig([]string{f}, &out, &errOut); code == 0 {
		t.Fatal("an unknown injection location was accepted")
	}
	for _, want := range []string{`p.yaml:8: secrets.credentials[0].inject[1]: "cookie" is not a place to inject into (use header, query, path or body)`, `p.yaml:9: secrets.credentials[0].inject[2]: "header" is listed twice`} {
		if !strings.Contains(errOut.String()+out.String(), want) {
			t.Errorf("want %q in:\n%s%s", want, out.String(), errOut.String())
		}
	}
}

// TestCheckConfigWarnsOfPlaintextToPublicHosts: plaintext_http on a
// credential with a public host passes, with a warning on stderr naming
// the line and the host; on local hosts alone it is quiet.
func TestCheckConfigWarnsOfPlaintextToPublicHosts(t *testing.T) {
	f := filepath.Join(t.TempDir(), "p.yaml")
	os.WriteFile(f, []byte("secrets:\n  credentials:\n    - name: ci\n      env: CI_TOKEN\n      hosts: [127.0.0.1, api.example.com]\n      plaintext_http: true\n"), 0o600)
	code, stdout, stderr := runCheckConfig(t, f)
	if code != 0 || !strings.Contains(stdout, "over TLS and plain http") {
		t.Fatalf("exit %d:\n%s%s", code, stdout, stderr)
	}
	if !strings.Contains(stderr, `p.yaml:6: warning: secrets.credentials[0].plaintext_http: credential "ci" goes over plain http`) || !strings.Contains(stderr, "to api.example.com, which is not local") {
		t.Errorf("no warning naming the line and the public host:\n%s", stderr)
	}
	os.WriteFile(f, []byte("secrets:\n  credentials:\n    - name: ci\n      env: CI_TOKEN\n      hosts: [127.0.0.1, localhost, ollama.internal]\n      plaintext_http: true\n"), 0o600)
	if code, _, stderr := runCheckConfig(t, f); code != 0 || stderr != "" {
		t.Errorf("local hosts only: exit %d, stderr %q; want 0 and nothing", code, stderr)
	}
}
