package enroll_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/slapenir/slapenir/internal/pki/certfile"
	"github.com/slapenir/slapenir/internal/pki/enroll"
	"github.com/slapenir/slapenir/internal/testutil/poll"
	"github.com/slapenir/slapenir/internal/testutil/stepca"
)

// logRecorder collects the progress lines a Bootstrap or Renewer prints.
type logRecorder struct {
	mu    sync.Mutex
	lines []string
}

func (l *logRecorder) logf(format string, args ...any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.lines = append(l.lines, strings.TrimSpace(sprintf(format, args...)))
}

func (l *logRecorder) count(substr string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, s := range l.lines {
		if strings.Contains(s, substr) {
			n++
		}
	}
	return n
}

func bootstrapFor(ca *stepca.CA, tok string, dir string, logs *logRecorder) enroll.Bootstrap {
	return enroll.Bootstrap{CAURL: ca.URL, Token: tok, Dir: certfile.Dir(dir), Timeout: 10 * time.Second, Logf: logs.logf}
}

func TestBootstrapWritesFilesWithPermissions(t *testing.T) {
	ca := stepca.Start(t, stepca.Options{})
	dir := filepath.Join(t.TempDir(), "certs")
	tok := ca.Token("agent-1", "", time.Time{}, "agent-1", "agent-1.slape-net")
	out, err := bootstrapFor(ca, tok, dir, &logRecorder{}).Run(context.Background())
	if err != nil {
		t.Fatalf("bootstrap: %v\n%s", err, ca.Log())
	}
	if out.Kept || out.Leaf.Subject.CommonName != "agent-1" {
		t.Fatalf("outcome = %+v, want a new certificate for agent-1", out)
	}
	want := map[string]os.FileMode{"cert.pem": 0o644, "key.pem": 0o600, "root_ca.pem": 0o644}
	for name, mode := range want {
		st, err := os.Stat(filepath.Join(dir, name))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if st.Mode().Perm() != mode {
			t.Errorf("%s mode = %o, want %o", name, st.Mode().Perm(), mode)
		}
	}
	st, err := enroll.Load(certfile.Dir(dir))
	if err != nil {
		t.Fatal(err)
	}
	if got := certfile.Fingerprint(st.Root); got != ca.RootFingerprint {
		t.Errorf("root_ca.pem fingerprint = %s, want %s", got, ca.RootFingerprint)
	}
	if len(st.Chain) < 2 {
		t.Errorf("cert.pem holds %d certificates, want leaf and intermediate", len(st.Chain))
	}
	if names := certfile.Names(st.Leaf()); !contains(names, "agent-1.slape-net") {
		t.Errorf("leaf names = %v, want the token's SANs", names)
	}
	if life := time.Until(st.Leaf().NotAfter); life > 6*time.Minute {
		t.Errorf("leaf lives %s, want the CA's 5-minute default", life)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 3 {
		t.Errorf("directory holds %d entries, want exactly 3 (no temporary files left): %v", len(entries), entries)
	}

	// Idempotent: a second run keeps the valid certificate even though the
	// token is now used up.
	out2, err := bootstrapFor(ca, tok, dir, &logRecorder{}).Run(context.Background())
	if err != nil {
		t.Fatalf("second bootstrap: %v", err)
	}
	if !out2.Kept || out2.Leaf.SerialNumber.Cmp(out.Leaf.SerialNumber) != 0 {
		t.Errorf("second bootstrap replaced the certificate; want it kept")
	}
}

func TestBootstrapRefusals(t *testing.T) {
	ca := stepca.Start(t, stepca.Options{})
	used := ca.Token("agent-used", "", time.Time{})
	if _, err := bootstrapFor(ca, used, t.TempDir(), &logRecorder{}).Run(context.Background()); err != nil {
		t.Fatalf("first use of the token: %v", err)
	}
	cases := []struct {
		name   string
		mutate func(b *enroll.Bootstrap)
		usage  bool     // refused locally, before contacting the CA
		want   []string // fragments of the one-sentence explanation
	}{
		{"missing token", func(b *enroll.Bootstrap) { b.Token = "" }, true, []string{"STEP_TOKEN is not set"}},
		{"garbage token", func(b *enroll.Bootstrap) { b.Token = "not-a-jwt" }, true, []string{"not a JWT"}},
		{"reused token", func(b *enroll.Bootstrap) { b.Token = used }, false, []string{"already used", "slapenir certs token agent-used"}},
		{"expired token", func(b *enroll.Bootstrap) { b.Token = ca.Token("agent-old", "", time.Now().Add(-time.Hour)) }, true, []string{"expired at", "slapenir certs token agent-old"}},
		{"token from the future", func(b *enroll.Bootstrap) { b.Token = ca.Token("agent-skew", "", time.Now().Add(time.Hour)) }, true, []string{"clocks differ"}},
		{"other provisioner", func(b *enroll.Bootstrap) { b.Token = ca.Token("agent-x", stepca.OtherProvisioner, time.Time{}) }, true, []string{`issued by provisioner "other-provisioner"`, `STEP_PROVISIONER is "agent-provisioner"`}},
		{"wrong fingerprint", func(b *enroll.Bootstrap) {
			b.Token = ca.Token("agent-fp", "", time.Time{})
			b.Fingerprint = strings.Repeat("ab", 32)
		}, true, []string{"STEP_FINGERPRINT", "differs from the root fingerprint in the token"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			b := bootstrapFor(ca, "", dir, &logRecorder{})
			tc.mutate(&b)
			_, err := b.Run(context.Background())
			if err == nil {
				t.Fatal("bootstrap succeeded, want a refusal")
			}
			if errors.Is(err, enroll.ErrUsage) != tc.usage {
				t.Errorf("errors.Is(err, ErrUsage) = %t, want %t: %v", !tc.usage, tc.usage, err)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
			if _, statErr := os.Stat(filepath.Join(dir, "cert.pem")); statErr == nil {
				t.Error("cert.pem written despite the refusal")
			}
		})
	}
}

// A fingerprint the CA does not have, and no token sha to contradict it: the
// CA itself says it has no such root.
func TestBootstrapUnknownRootFingerprint(t *testing.T) {
	ca := stepca.Start(t, stepca.Options{})
	b := bootstrapFor(ca, ca.Token("agent-1", "", time.Time{}), t.TempDir(), &logRecorder{})
	b.Fingerprint = strings.Repeat("cd", 32)
	b.Token = tokenWithoutSHA(t, ca, "agent-1")
	_, err := b.Run(context.Background())
	if err == nil || !strings.Contains(err.Error(), "has no root with fingerprint "+b.Fingerprint) {
		t.Fatalf("err = %v, want the CA to have no root with that fingerprint", err)
	}
}

func TestBootstrapWaitsForCA(t *testing.T) {
	ca := stepca.Start(t, stepca.Options{})
	// step-ca refuses tokens issued before it started, so this one is dated
	// a little after the restart below (within the minute of allowed skew).
	tok := ca.Token("agent-late", "", time.Now().Add(20*time.Second))
	ca.Stop()
	logs := &logRecorder{}
	b := bootstrapFor(ca, tok, t.TempDir(), logs)
	b.Timeout = time.Minute
	result := make(chan error, 1)
	go func() {
		_, err := b.Run(context.Background())
		result <- err
	}()
	poll.Until(t, func() bool { return logs.count("retrying in") >= 2 })
	ca.Restart()
	if err := <-result; err != nil {
		t.Fatalf("bootstrap after the CA came up: %v\n%s", err, ca.Log())
	}
	if logs.count("unreachable") < 2 {
		t.Errorf("want one line per failed try naming the unreachable CA, got %q", logs.lines)
	}
}

func TestBootstrapGivesUpAfterTimeout(t *testing.T) {
	ca := stepca.Start(t, stepca.Options{})
	tok := ca.Token("agent-never", "", time.Time{})
	ca.Stop()
	logs := &logRecorder{}
	b := bootstrapFor(ca, tok, t.TempDir(), logs)
	b.Timeout = 700 * time.Millisecond
	_, err := b.Run(context.Background())
	if err == nil || !strings.Contains(err.Error(), "unreachable") {
		t.Fatalf("err = %v, want the CA reported unreachable", err)
	}
	if logs.count("giving up") != 1 {
		t.Errorf("want a final 'giving up' line, got %q", logs.lines)
	}
}

func TestBootstrapRequiresTrustAnchor(t *testing.T) {
	ca := stepca.Start(t, stepca.Options{})
	b := bootstrapFor(ca, tokenWithoutSHA(t, ca, "agent-tofu"), t.TempDir(), &logRecorder{})
	if _, err := b.Run(context.Background()); !errors.Is(err, enroll.ErrUsage) || !strings.Contains(err.Error(), "--insecure") {
		t.Fatalf("err = %v, want a refusal suggesting STEP_FINGERPRINT or --insecure", err)
	}
	b.Insecure = true
	out, err := b.Run(context.Background())
	if err != nil {
		t.Fatalf("--insecure bootstrap: %v", err)
	}
	if out.Leaf.Subject.CommonName != "agent-tofu" {
		t.Errorf("leaf CN = %q", out.Leaf.Subject.CommonName)
	}
}
