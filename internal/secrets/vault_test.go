package secrets

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/slapenir/slapenir/internal/inject"
	"github.com/slapenir/slapenir/internal/redact"
	"go.yaml.in/yaml/v3"
)

const (
	githubValue = "ghp_R3alGithubT0kenValue0123456789abcd"
	openaiValue = "sk-proj-R3alOpenaiKeyValue0123456789"
	slackValue  = "xoxb-1111-2222-R3alSlackValue"
)

func envMap(m map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) {
		v, ok := m[k]
		return v, ok
	}
}

func openVault(t *testing.T, cfg Config, opts Options) *Vault {
	t.Helper()
	if opts.Logf == nil {
		opts.Logf = t.Logf
	}
	v, err := Open(cfg, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { v.Close() })
	return v
}

func writeFile(t *testing.T, dir, name, content string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func allowAll(int) bool { return true }

// injected replaces every placeholder, allowed everywhere, in s.
func injected(t *testing.T, v *Vault, s string) string {
	t.Helper()
	inj, err := v.NewInjector()
	if err != nil {
		t.Fatal(err)
	}
	out, _ := inj.Replace([]byte(s), allowAll)
	return string(out)
}

func TestOpenReadsEverySource(t *testing.T) {
	dir := t.TempDir()
	file := writeFile(t, dir, "github_token", githubValue+"\n")
	dotenv := writeFile(t, dir, ".env", "# keys\nexport OPENAI_API_KEY='"+openaiValue+"'\nSLACK_TOKEN=from-dotenv-overridden\n")
	cfg := Config{
		Dotenv: dotenv,
		Credentials: []CredentialConfig{
			{Name: "github", File: file, Hosts: []string{"github.com"}, AgentEnv: "GITHUB_TOKEN"},
			{Name: "openai", Env: "OPENAI_API_KEY", Hosts: []string{"api.openai.com"}},
			{Name: "slack", Env: "SLACK_TOKEN", Hosts: []string{"slack.com"}},
		},
	}
	v := openVault(t, cfg, Options{LookupEnv: envMap(map[string]string{"SLACK_TOKEN": slackValue})})

	got := injected(t, v, "DUMMY_GITHUB DUMMY_OPENAI DUMMY_SLACK")
	if want := githubValue + " " + openaiValue + " " + slackValue; got != want {
		t.Errorf("values through the injector = %q, want %q (the file's newline dropped, the environment over .env)", got, want)
	}
	wantSources := []string{
		`file "` + file + `"`,
		`.env file "` + dotenv + `" line 2`,
		"environment variable SLACK_TOKEN",
	}
	for i, c := range v.Credentials() {
		if c.Source != wantSources[i] {
			t.Errorf("%s: source %q, want %q", c.Name, c.Source, wantSources[i])
		}
	}
	wantList := []Placeholder{
		{Name: "github", Env: "GITHUB_TOKEN", Placeholder: "DUMMY_GITHUB"},
		{Name: "openai", Env: "OPENAI_API_KEY", Placeholder: "DUMMY_OPENAI"},
		{Name: "slack", Env: "SLACK_TOKEN", Placeholder: "DUMMY_SLACK"},
	}
	if got := v.Placeholders(); fmt.Sprint(got) != fmt.Sprint(wantList) {
		t.Errorf("Placeholders() = %v, want %v", got, wantList)
	}
}

func TestOpenFromProcessEnvironment(t *testing.T) {
	t.Setenv("SLAPENIR_TEST_TOKEN", githubValue)
	v := openVault(t, Config{Credentials: []CredentialConfig{{Name: "gh", Env: "SLAPENIR_TEST_TOKEN", Hosts: []string{"github.com"}}}}, Options{})
	if got := injected(t, v, "DUMMY_GH"); got != githubValue {
		t.Errorf("got %q", got)
	}
}

func TestOpenErrorsNameTheProblemNotTheValue(t *testing.T) {
	dir := t.TempDir()
	const marker = "M4rk3rS3cr3tValue"
	brokenEnv := writeFile(t, dir, "broken.env", "A=1\nTOKEN=\""+marker+"\n")
	badEscape := writeFile(t, dir, "escape.env", "TOKEN=\""+marker+"\\q\"\n")
	goodEnv := writeFile(t, dir, "good.env", "TOKEN="+marker+"\n")
	short := writeFile(t, dir, "short", "abc"+"\n")
	empty := writeFile(t, dir, "empty", "\n\n")
	big := writeFile(t, dir, "big", strings.Repeat(marker, maxValueBytes/len(marker)+1))
	cases := []struct {
		name string
		cfg  Config
		env  map[string]string
		want string
	}{
		{"env missing", Config{Credentials: []CredentialConfig{{Name: "gh", Env: "NOPE", Hosts: []string{"a.com"}}}}, nil,
			`secrets: credential "gh": NOPE is not set in the proxy's environment`},
		{"env missing from dotenv too", Config{Dotenv: goodEnv, Credentials: []CredentialConfig{{Name: "gh", Env: "NOPE", Hosts: []string{"a.com"}}}}, nil,
			`secrets: credential "gh": NOPE is set neither in the proxy's environment nor in .env file "` + goodEnv + `"`},
		{"dotenv bad escape", Config{Dotenv: badEscape, Credentials: []CredentialConfig{{Name: "gh", Env: "NOPE", Hosts: []string{"a.com"}}}}, nil,
			`line 1 (TOKEN): unknown escape sequence`},
		{"dotenv unclosed quote", Config{Dotenv: brokenEnv, Credentials: []CredentialConfig{{Name: "gh", Env: "TOKEN", Hosts: []string{"a.com"}}}}, nil,
			`secrets: .env file "` + brokenEnv + `" line 2 (TOKEN): the double-quoted value starting here is never closed`},
		{"dotenv missing", Config{Dotenv: filepath.Join(dir, "nope.env"), Credentials: []CredentialConfig{{Name: "gh", Env: "T", Hosts: []string{"a.com"}}}}, nil,
			`no such file or directory`},
		{"file missing", Config{Credentials: []CredentialConfig{{Name: "gh", File: filepath.Join(dir, "nope"), Hosts: []string{"a.com"}}}}, nil,
			`secrets: credential "gh": cannot read "` + filepath.Join(dir, "nope") + `": no such file or directory`},
		{"file too short", Config{Credentials: []CredentialConfig{{Name: "gh", File: short, Hosts: []string{"a.com"}}}}, nil,
			`is shorter than 8 bytes`},
		{"file empty", Config{Credentials: []CredentialConfig{{Name: "gh", File: empty, Hosts: []string{"a.com"}}}}, nil,
			`is empty; set it or remove the credential`},
		{"file huge", Config{Credentials: []CredentialConfig{{Name: "gh", File: big, Hosts: []string{"a.com"}}}}, nil,
			`is larger than 65536 bytes`},
		{"invalid config", Config{Credentials: []CredentialConfig{{Name: "gh", Env: "T"}}}, map[string]string{"T": marker},
			`secrets.credentials[0].hosts: is empty`},
		{"placeholder contains a value", Config{Credentials: []CredentialConfig{
			{Name: "a", Env: "A", Hosts: []string{"a.com"}, Placeholder: "X_" + marker},
			{Name: "b", Env: "B", Hosts: []string{"b.com"}, Placeholder: "DUMMY_" + marker + "_2"}}},
			map[string]string{"A": "DUMMY_A_long_enough", "B": marker},
			`the placeholder of credential "a" contains the real value of credential "b"`},
		{"format-preserving on a short value", Config{Credentials: []CredentialConfig{{Name: "a", Env: "A", Hosts: []string{"a.com"}, FormatPreserving: true}}},
			map[string]string{"A": "ghp_" + "ab-cd-ef"}, `needs at least 8 letters or digits`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			v, err := Open(c.cfg, Options{LookupEnv: envMap(c.env), Logf: t.Logf})
			if err == nil {
				v.Close()
				t.Fatal("Open succeeded")
			}
			if !strings.Contains(err.Error(), c.want) {
				t.Errorf("error %q does not say %q", err, c.want)
			}
			if strings.Contains(err.Error(), "M4rk") || strings.Contains(err.Error(), "abc\n") {
				t.Errorf("error %q shows a value", err)
			}
		})
	}
}

func TestAllowMatchesCredentialHosts(t *testing.T) {
	cfg := Config{Credentials: []CredentialConfig{
		{Name: "github", Env: "G", Hosts: []string{"github.com", "*.github.com", "api.githubcopilot.com:443"}},
		{Name: "openai", Env: "O", Hosts: []string{"api.openai.com"}},
	}}
	v := openVault(t, cfg, Options{LookupEnv: envMap(map[string]string{"G": githubValue, "O": openaiValue})})
	cases := []struct {
		host         string
		port         int
		github, open bool
	}{
		{"github.com", 443, true, false},
		{"api.github.com", 443, true, false},
		{"codeload.github.com", 80, true, false},
		{"api.githubcopilot.com", 443, true, false},
		{"api.githubcopilot.com", 8443, false, false},
		{"evilgithub.com", 443, false, false},
		{"github.com.evil.com", 443, false, false},
		{"api.openai.com", 443, false, true},
		{"openai.com", 443, false, false},
	}
	inj, err := v.NewInjector()
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range cases {
		allow := v.Allow(c.host, c.port, true)
		if allow(0) != c.github || allow(1) != c.open {
			t.Errorf("%s:%d: github %v openai %v, want %v %v", c.host, c.port, allow(0), allow(1), c.github, c.open)
		}
		if allow(-1) || allow(2) {
			t.Errorf("%s:%d: an index outside the credentials is allowed", c.host, c.port)
		}
		// The same decision through the injector: only the destination's
		// credentials are replaced, the others are reported as foreign.
		out, used := inj.Replace([]byte("Bearer DUMMY_GITHUB&k=DUMMY_OPENAI"), allow)
		if strings.Contains(string(out), githubValue) != c.github || strings.Contains(string(out), openaiValue) != c.open {
			t.Errorf("%s:%d: injected %q", c.host, c.port, out)
		}
		if len(v.Names(used.Foreign))+len(v.Names(used.Injected)) != 2 {
			t.Errorf("%s:%d: used %+v does not account for both placeholders", c.host, c.port, used)
		}
	}
	_, used := inj.Replace([]byte("DUMMY_OPENAI"), v.Allow("evil.com", 443, true))
	if got := v.Names(used.Foreign); len(got) != 1 || got[0] != "openai" {
		t.Errorf("foreign names = %v, want [openai]", got)
	}
}

func TestBasicAuthThroughInjector(t *testing.T) {
	v := openVault(t, Config{Credentials: []CredentialConfig{{Name: "github", Env: "G", Hosts: []string{"github.com"}}}},
		Options{LookupEnv: envMap(map[string]string{"G": githubValue})})
	inj, err := v.NewInjector()
	if err != nil {
		t.Fatal(err)
	}
	hdr := "Basic " + base64.StdEncoding.EncodeToString([]byte("x-access-token:DUMMY_GITHUB"))
	out, used := inj.Basic(hdr, v.Allow("github.com", 443, true))
	want := "Basic " + base64.StdEncoding.EncodeToString([]byte("x-access-token:"+githubValue))
	if out != want || len(used.Injected) != 1 {
		t.Errorf("Basic = %q %+v, want %q", out, used, want)
	}
}

func TestRedactorGetsEveryValue(t *testing.T) {
	v := openVault(t, Config{Credentials: []CredentialConfig{
		{Name: "github", Env: "G", Hosts: []string{"github.com"}},
		{Name: "openai", Env: "O", Hosts: []string{"api.openai.com"}},
	}}, Options{LookupEnv: envMap(map[string]string{"G": githubValue, "O": openaiValue})})
	red, err := v.NewRedactor(redact.Options{})
	if err != nil {
		t.Fatal(err)
	}
	in := "echo " + githubValue + " and " + base64.StdEncoding.EncodeToString([]byte("u:"+openaiValue)) + " DUMMY_GITHUB"
	out, n := red.Redact([]byte(in))
	if n != 2 || bytes.Contains(out, []byte("R3al")) || !bytes.Contains(out, []byte("DUMMY_GITHUB")) {
		t.Errorf("redacted %d: %q", n, out)
	}
}

func TestFormatPreservingPlaceholders(t *testing.T) {
	cfg := Config{Credentials: []CredentialConfig{
		{Name: "github", Env: "G", Hosts: []string{"github.com"}, FormatPreserving: true},
		{Name: "openai", Env: "O", Hosts: []string{"api.openai.com"}, FormatPreserving: true},
	}}
	env := envMap(map[string]string{"G": githubValue, "O": openaiValue})
	key := bytes.Repeat([]byte{1}, 32)
	v1 := openVault(t, cfg, Options{LookupEnv: env, PlaceholderKey: key})
	v2 := openVault(t, cfg, Options{LookupEnv: env, PlaceholderKey: key})
	v3 := openVault(t, cfg, Options{LookupEnv: env})
	for i, c := range v1.Credentials() {
		value := []string{githubValue, openaiValue}[i]
		if len(c.Placeholder) != len(value) || c.Placeholder[:4] != value[:4] || c.Placeholder == value {
			t.Errorf("%s: placeholder %q does not look like its value", c.Name, c.Placeholder)
		}
		if v2.Credentials()[i].Placeholder != c.Placeholder {
			t.Errorf("%s: same key, different placeholders", c.Name)
		}
		if v3.Credentials()[i].Placeholder == c.Placeholder {
			t.Errorf("%s: a random key gave the same placeholder", c.Name)
		}
	}
	gh := v1.Credentials()[0].Placeholder
	if got := injected(t, v1, "token "+gh); got != "token "+githubValue {
		t.Errorf("format-preserving placeholder not injected: %q", got)
	}
}

func TestCloseWipes(t *testing.T) {
	v, err := Open(Config{Credentials: []CredentialConfig{{Name: "github", Env: "G", Hosts: []string{"github.com"}}}},
		Options{LookupEnv: envMap(map[string]string{"G": githubValue}), Logf: t.Logf})
	if err != nil {
		t.Fatal(err)
	}
	es, ok := v.store.(*enclaveStore)
	if !ok {
		t.Fatalf("store is %T; this process (root, CAP_IPC_LOCK) should lock memory", v.store)
	}
	enclave := es.enclaves[0]
	if err := v.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := v.NewInjector(); !errors.Is(err, ErrClosed) {
		t.Errorf("NewInjector after Close: %v, want ErrClosed", err)
	}
	if _, err := v.NewRedactor(redact.Options{}); !errors.Is(err, ErrClosed) {
		t.Errorf("NewRedactor after Close: %v, want ErrClosed", err)
	}
	if v.Close() != nil {
		t.Error("second Close failed")
	}
	if len(v.Credentials()) != 1 || v.Credentials()[0].Placeholder != "DUMMY_GITHUB" {
		t.Error("Close lost the credential list")
	}
	// Other tests may hold vaults open, and the session key is purged only
	// with the last one; when this was the last, the enclave kept aside
	// no longer opens.
	enclaveMu.Lock()
	last := enclaveUsers == 0
	enclaveMu.Unlock()
	if last {
		if lb, err := enclave.Open(); err == nil {
			lb.Destroy()
			t.Error("the enclave still opens after the last vault closed")
		}
	} else {
		t.Log("other vaults are open, so the purge is not checked here")
	}
}

func TestCloseWipesUnlockedStore(t *testing.T) {
	value := []byte(githubValue)
	st, err := newPlainStore([][]byte{value})
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(value, make([]byte, len(value))) {
		t.Error("the value given to the store was not wiped")
	}
	var seen string
	if err := st.withValues(func(v [][]byte) error { seen = string(v[0]); return nil }); err != nil || seen != githubValue {
		t.Fatalf("withValues: %q, %v", seen, err)
	}
	st.close()
	if st.sl.mem != nil {
		t.Error("the slab is still mapped after close")
	}
}

func TestClosingOneVaultKeepsAnother(t *testing.T) {
	cfg := Config{Credentials: []CredentialConfig{{Name: "github", Env: "G", Hosts: []string{"github.com"}}}}
	opts := Options{LookupEnv: envMap(map[string]string{"G": githubValue}), Logf: t.Logf}
	old, err := Open(cfg, opts)
	if err != nil {
		t.Fatal(err)
	}
	reloaded := openVault(t, cfg, opts)
	old.Close()
	if got := injected(t, reloaded, "DUMMY_GITHUB"); got != githubValue {
		t.Errorf("after the old vault closed, the new one gives %q", got)
	}
}

func TestConcurrentUse(t *testing.T) {
	v := openVault(t, Config{Credentials: []CredentialConfig{{Name: "github", Env: "G", Hosts: []string{"github.com"}}}},
		Options{LookupEnv: envMap(map[string]string{"G": githubValue})})
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 20 {
				if _, err := v.NewInjector(); err != nil {
					t.Error(err)
					return
				}
				if !v.Allow("github.com", 443, true)(0) {
					t.Error("github.com not allowed")
				}
			}
		})
	}
	wg.Wait()
}

func TestNothingPrintsAValue(t *testing.T) {
	dir := t.TempDir()
	file := writeFile(t, dir, "tok", githubValue)
	cfg := Config{Credentials: []CredentialConfig{
		{Name: "github", File: file, Hosts: []string{"github.com"}, FormatPreserving: true},
		{Name: "openai", Env: "O", Hosts: []string{"api.openai.com"}},
	}}
	v := openVault(t, cfg, Options{LookupEnv: envMap(map[string]string{"O": openaiValue})})
	var things []any
	things = append(things, v, cfg, v.Credentials(), v.Placeholders(), v.Credentials()[0], v.Placeholders()[0])
	var printed []string
	for _, x := range things {
		for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x", "%X"} {
			printed = append(printed, fmt.Sprintf(verb, x))
		}
		j, err := json.Marshal(x)
		if err != nil {
			t.Fatalf("json %T: %v", x, err)
		}
		y, err := yaml.Marshal(x)
		if err != nil {
			t.Fatalf("yaml %T: %v", x, err)
		}
		printed = append(printed, string(j), string(y))
	}
	printed = append(printed, v.String())
	for _, value := range []string{githubValue, openaiValue} {
		forms := []string{value, value[8:24], fmt.Sprintf("%x", value[8:24]), fmt.Sprintf("%X", value[8:24])}
		for _, p := range printed {
			for _, f := range forms {
				if strings.Contains(p, f) {
					t.Errorf("printed %q contains (a form of) a value", p)
				}
			}
		}
	}
	if want := "secrets.Vault(2 credentials, locked memory)"; fmt.Sprintf("%#v", v) != want {
		t.Errorf("%%#v = %q, want %q", fmt.Sprintf("%#v", v), want)
	}
}

func TestLoadOrCreateKey(t *testing.T) {
	path := filepath.Join(t.TempDir(), "placeholder.key")
	k1, err := LoadOrCreateKey(path)
	if err != nil {
		t.Fatal(err)
	}
	info, err := os.Stat(path)
	if err != nil || info.Mode().Perm() != 0o600 || len(k1) != 32 {
		t.Fatalf("key file %v %v, %d bytes", info, err, len(k1))
	}
	k2, err := LoadOrCreateKey(path)
	if err != nil || !bytes.Equal(k1, k2) {
		t.Errorf("second load: %v, equal %v", err, bytes.Equal(k1, k2))
	}
	bad := writeFile(t, t.TempDir(), "short.key", "abc")
	if _, err := LoadOrCreateKey(bad); err == nil || !strings.Contains(err.Error(), "is 3 bytes, want 32") {
		t.Errorf("short key: %v", err)
	}
}

// The injector from the vault and inject's own validation agree: every
// placeholder the vault makes is one inject accepts.
func TestPlaceholdersAreLongEnoughForInject(t *testing.T) {
	if len(DefaultPlaceholder("a")) < inject.MinPlaceholderLen {
		t.Errorf("DefaultPlaceholder(\"a\") = %q is shorter than inject.MinPlaceholderLen", DefaultPlaceholder("a"))
	}
}
