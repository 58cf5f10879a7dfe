package enroll_test

import (
	"context"
	"crypto/x509"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/slapenir/slapenir/internal/pki/certfile"
	"github.com/slapenir/slapenir/internal/pki/enroll"
	"github.com/slapenir/slapenir/internal/pki/stepca"
	"github.com/slapenir/slapenir/internal/testutil/poll"
	tstepca "github.com/slapenir/slapenir/internal/testutil/stepca"
)

// enrolled starts a CA with 5-minute certificates and bootstraps subject into
// a fresh directory.
func enrolled(t *testing.T, subject string, lifetime time.Duration) (*tstepca.CA, certfile.Dir) {
	t.Helper()
	ca := tstepca.Start(t, tstepca.Options{})
	dir := certfile.Dir(t.TempDir())
	b := bootstrapFor(ca, ca.Token(subject, "", time.Time{}), string(dir), &logRecorder{})
	b.NotAfter = lifetime
	if _, err := b.Run(context.Background()); err != nil {
		t.Fatalf("bootstrap: %v", err)
	}
	return ca, dir
}

func leafOf(t *testing.T, dir certfile.Dir) *enroll.State {
	t.Helper()
	st, err := enroll.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	return &st
}

func TestRenewNowKeepsKeyAndRunsExec(t *testing.T) {
	ca, dir := enrolled(t, "agent-r", 0)
	before := leafOf(t, dir)
	keyBefore, _ := os.ReadFile(dir.Key())
	marker := filepath.Join(t.TempDir(), "reloaded")
	r := &enroll.Renewer{CAURL: ca.URL, Dir: dir, AfterRenew: enroll.Hook{Exec: "echo renewed > " + marker}.Run}
	leaf, err := r.RenewNow(context.Background())
	if err != nil {
		t.Fatalf("renew: %v\n%s", err, ca.Log())
	}
	after := leafOf(t, dir)
	if after.Leaf().SerialNumber.Cmp(before.Leaf().SerialNumber) == 0 || leaf.SerialNumber.Cmp(after.Leaf().SerialNumber) != 0 {
		t.Error("cert.pem still holds the old certificate")
	}
	if after.Leaf().Subject.CommonName != "agent-r" {
		t.Errorf("renewed CN = %q", after.Leaf().Subject.CommonName)
	}
	if keyAfter, _ := os.ReadFile(dir.Key()); string(keyAfter) != string(keyBefore) {
		t.Error("key.pem changed; renewal must keep the key")
	}
	if b, err := os.ReadFile(marker); err != nil || string(b) != "renewed\n" {
		t.Errorf("--exec did not run after renewal: %q, %v", b, err)
	}
}

// The daemon decides by its clock: moving the clock to when a third of the
// lifetime remains makes it renew without waiting minutes.
func TestRenewDaemonRenewsWhenDue(t *testing.T) {
	ca, dir := enrolled(t, "agent-d", 0)
	before := leafOf(t, dir).Leaf()
	var offset atomic.Int64 // how far the daemon's clock is ahead of real time
	offset.Store(int64(time.Until(enroll.DueAt(before, 0)) + time.Second))
	renewals := make(chan struct{}, 4)
	logs := &logRecorder{}
	r := &enroll.Renewer{
		CAURL:  ca.URL,
		Dir:    dir,
		Logf:   logs.logf,
		Now:    func() time.Time { return time.Now().Add(time.Duration(offset.Load())) },
		Jitter: func(*x509.Certificate) time.Duration { return 0 },
		AfterRenew: func(context.Context) error {
			offset.Store(0) // back to real time: the new certificate is not due
			renewals <- struct{}{}
			return nil
		},
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx, nil) }()
	select {
	case <-renewals:
	case err := <-done:
		t.Fatalf("daemon stopped before renewing: %v", err)
	case <-time.After(30 * time.Second):
		t.Fatalf("no renewal within 30s; log: %q", logs.lines)
	}
	poll.Until(t, func() bool { return logs.count("next renewal in") >= 2 })
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("daemon returned %v after cancel, want nil", err)
	}
	if after := leafOf(t, dir).Leaf(); after.SerialNumber.Cmp(before.SerialNumber) == 0 {
		t.Error("cert.pem was not replaced")
	}
	if len(renewals) != 0 {
		t.Errorf("%d extra renewals of a fresh certificate", len(renewals))
	}
}

// SIGHUP forces a renewal now; the --pid hook then signals the consumer.
func TestRenewDaemonSIGHUPForcesRenewalAndSignalsPID(t *testing.T) {
	ca, dir := enrolled(t, "agent-h", 0)
	before := leafOf(t, dir).Leaf()

	// The consumer: a shell that writes a file when it gets SIGHUP.
	got := filepath.Join(t.TempDir(), "got-hup")
	consumer := exec.Command("/bin/sh", "-c", `trap 'echo hup > `+got+`' HUP; while :; do sleep 0.05; done`)
	if err := consumer.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { consumer.Process.Kill(); consumer.Wait() })

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	logs := &logRecorder{}
	r := &enroll.Renewer{CAURL: ca.URL, Dir: dir, Logf: logs.logf, AfterRenew: enroll.Hook{PID: consumer.Process.Pid}.Run}
	force := enroll.ForceOnSignal(ctx, syscall.SIGHUP)
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx, force) }()
	poll.Until(t, func() bool { return logs.count("next renewal in") >= 1 })
	if err := syscall.Kill(os.Getpid(), syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	poll.Until(t, func() bool { return logs.count("renewed") >= 1 })
	poll.Until(t, func() bool { _, err := os.Stat(got); return err == nil })
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("daemon: %v", err)
	}
	if logs.count("renewal forced (SIGHUP)") != 1 {
		t.Errorf("log does not say the renewal was forced: %q", logs.lines)
	}
	if after := leafOf(t, dir).Leaf(); after.SerialNumber.Cmp(before.SerialNumber) == 0 {
		t.Error("cert.pem was not replaced")
	}
}

// An expired certificate cannot be renewed: the daemon exits with
// ErrExpired, and step-ca itself refuses it too.
func TestRenewExpiredCertificateFails(t *testing.T) {
	ca, dir := enrolled(t, "agent-e", 2*time.Second)
	st := leafOf(t, dir)
	poll.Until(t, func() bool { return time.Now().After(st.Leaf().NotAfter.Add(100 * time.Millisecond)) })

	r := &enroll.Renewer{CAURL: ca.URL, Dir: dir, Timeout: 3 * time.Second}
	if err := r.Run(context.Background(), nil); !errors.Is(err, enroll.ErrExpired) {
		t.Fatalf("daemon on an expired certificate returned %v, want ErrExpired", err)
	}
	_, err := stepca.New(ca.URL, st.Root).Renew(context.Background(), st.KeyPair)
	var refused *stepca.HandshakeRefusedError
	if !errors.As(err, &refused) || !strings.Contains(err.Error(), "expired certificate") || stepca.Retryable(err) {
		t.Fatalf("step-ca renewing an expired certificate: %v, want a final handshake refusal", err)
	}
}

func TestRenewWaitsForCA(t *testing.T) {
	ca, dir := enrolled(t, "agent-w", 0)
	ca.Stop()
	logs := &logRecorder{}
	r := &enroll.Renewer{CAURL: ca.URL, Dir: dir, Logf: logs.logf, Timeout: time.Minute}
	done := make(chan error, 1)
	go func() { _, err := r.RenewNow(context.Background()); done <- err }()
	poll.Until(t, func() bool { return logs.count("retrying in") >= 2 })
	ca.Restart()
	if err := <-done; err != nil {
		t.Fatalf("renew after the CA came back: %v", err)
	}
}
