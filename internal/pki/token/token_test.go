package token_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"go.step.sm/crypto/jose"

	"github.com/slapenir/slapenir/internal/pki/token"
)

// keyPairs caches generated provisioner keys by password: encrypting one
// takes seconds under -race (PBKDF2 with step's iteration count).
var keyPairs sync.Map

// provisioner makes a JWK provisioner the way `step ca init` does: a public
// key and the private key encrypted with password.
func provisioner(t *testing.T, name string, password []byte) token.Provisioner {
	t.Helper()
	if p, ok := keyPairs.Load(string(password)); ok {
		p := p.(token.Provisioner)
		p.Name = name
		return p
	}
	pub, enc, err := jose.GenerateDefaultKeyPair(password)
	if err != nil {
		t.Fatal(err)
	}
	s, err := enc.CompactSerialize()
	if err != nil {
		t.Fatal(err)
	}
	p := token.Provisioner{Type: "JWK", Name: name, Key: pub, EncryptedKey: s}
	keyPairs.Store(string(password), p)
	return p
}

// decrypted caches decrypted keys, for the same reason as keyPairs.
var decrypted sync.Map

func signingKey(t *testing.T, p token.Provisioner, password []byte) *jose.JSONWebKey {
	t.Helper()
	if k, ok := decrypted.Load(p.EncryptedKey); ok {
		return k.(*jose.JSONWebKey)
	}
	k, err := token.DecryptKey(p, password)
	if err != nil {
		t.Fatalf("DecryptKey with the right password: %v", err)
	}
	decrypted.Store(p.EncryptedKey, k)
	return k
}

func TestMintMatchesStepCAToken(t *testing.T) {
	p := provisioner(t, "agent-provisioner", []byte("pw"))
	key := signingKey(t, p, []byte("pw"))
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	req := token.Request{Key: key, Provisioner: p.Name, CAURL: "https://ca:9000/", Subject: "agent-1", SANs: []string{"agent-1", "10.0.0.7"}, RootSHA: "ABCDEF", Now: now}
	tok, err := token.Mint(req)
	if err != nil {
		t.Fatal(err)
	}
	jwt, err := jose.ParseSigned(tok)
	if err != nil {
		t.Fatal(err)
	}
	var c token.Claims
	if err := jwt.Claims(p.Key, &c); err != nil {
		t.Fatalf("token does not verify with the provisioner's public key: %v", err)
	}
	if kid := jwt.Headers[0].KeyID; kid != p.Key.KeyID || kid == "" {
		t.Errorf("kid = %q, want %q", kid, p.Key.KeyID)
	}
	if c.Issuer != "agent-provisioner" || c.Subject != "agent-1" || c.SHA != "abcdef" {
		t.Errorf("iss/sub/sha = %q/%q/%q", c.Issuer, c.Subject, c.SHA)
	}
	if len(c.Audience) != 1 || c.Audience[0] != "https://ca:9000/1.0/sign" {
		t.Errorf("aud = %q, want the CA's sign URL", c.Audience)
	}
	if strings.Join(c.SANs, ",") != "agent-1,10.0.0.7" {
		t.Errorf("sans = %q", c.SANs)
	}
	if !c.IssuedAt.Time().Equal(now) || !c.NotBefore.Time().Equal(now) || !c.Expiry.Time().Equal(now.Add(5*time.Minute)) {
		t.Errorf("iat/nbf/exp = %v/%v/%v", c.IssuedAt.Time(), c.NotBefore.Time(), c.Expiry.Time())
	}
	again, _ := token.Mint(req)
	c2, err := token.ParseUnverified(again)
	if err != nil {
		t.Fatal(err)
	}
	if c2.ID == c.ID || len(c.ID) < 32 {
		t.Errorf("jti %q then %q: want long and random", c.ID, c2.ID)
	}
}

func TestMintDefaultsSANsToSubject(t *testing.T) {
	p := provisioner(t, "p", []byte("pw"))
	key := signingKey(t, p, []byte("pw"))
	tok, err := token.Mint(token.Request{Key: key, Provisioner: "p", CAURL: "https://ca:9000", Subject: "agent-2"})
	if err != nil {
		t.Fatal(err)
	}
	c, err := token.ParseUnverified(tok)
	if err != nil {
		t.Fatal(err)
	}
	if len(c.SANs) != 1 || c.SANs[0] != "agent-2" {
		t.Errorf("sans = %q, want [agent-2] as step does", c.SANs)
	}
}

func TestDecryptKeyWrongPasswordKeepsItSecret(t *testing.T) {
	p := provisioner(t, "agent-provisioner", []byte("right-password"))
	_, err := token.DecryptKey(p, []byte("wrong-password-xyz"))
	if err == nil {
		t.Fatal("decrypted with the wrong password")
	}
	if strings.Contains(err.Error(), "wrong-password-xyz") || !strings.Contains(err.Error(), "--password-file") {
		t.Errorf("error %q must point at --password-file and not contain the password", err)
	}
}

func TestProvisionersFromCAJSON(t *testing.T) {
	p := provisioner(t, "agent-provisioner", []byte("pw"))
	cfg := map[string]any{
		"root": "certs/root_ca.crt",
		"authority": map[string]any{"provisioners": []any{
			map[string]any{"type": "ACME", "name": "acme"},
			p,
		}},
	}
	data, _ := json.Marshal(cfg)
	path := filepath.Join(t.TempDir(), "ca.json")
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	list, err := token.ProvisionersFromCAJSON(path)
	if err != nil {
		t.Fatal(err)
	}
	got, err := token.FindProvisioner(list, "agent-provisioner")
	if err != nil || got.EncryptedKey != p.EncryptedKey {
		t.Fatalf("FindProvisioner: %v", err)
	}
	if _, err := token.FindProvisioner(list, "acme"); err == nil || !strings.Contains(err.Error(), "no JWK provisioner named") {
		t.Errorf("an ACME provisioner was accepted for token minting: %v", err)
	}
	root, err := token.RootPathFromCAJSON(path, data)
	if err != nil || root != filepath.Join(filepath.Dir(path), "certs/root_ca.crt") {
		t.Errorf("root path = %q, %v", root, err)
	}
}

func TestParseUnverifiedRejectsGarbage(t *testing.T) {
	if _, err := token.ParseUnverified("hello"); err == nil || !strings.Contains(err.Error(), "not a JWT") {
		t.Errorf("err = %v", err)
	}
}

// TestMintFromFindsAndDecrypts: the provisioner is found by name among
// what the CA publishes, its key decrypted with a password file's content.
func TestMintFromFindsAndDecrypts(t *testing.T) {
	password := []byte("pw-0123456789abcdef")
	provs := []token.Provisioner{{Type: "JWK", Name: "other"}, provisioner(t, "agent-provisioner", password)}
	tok, err := token.MintFrom(provs, append(password, '\n'), token.Request{Provisioner: "agent-provisioner", CAURL: "https://ca:9000", Subject: "agent-1", RootSHA: "ab"})
	if err != nil {
		t.Fatal(err)
	}
	c, err := token.ParseUnverified(tok)
	if err != nil || c.Subject != "agent-1" || c.Issuer != "agent-provisioner" {
		t.Fatalf("claims %+v, %v", c, err)
	}
	if _, err := token.MintFrom(provs, []byte("wrong-password-xyz"), token.Request{Provisioner: "agent-provisioner", CAURL: "https://ca:9000", Subject: "agent-1"}); err == nil {
		t.Error("a wrong password minted a token")
	}
	if _, err := token.MintFrom(provs, password, token.Request{Provisioner: "missing", CAURL: "https://ca:9000", Subject: "agent-1"}); err == nil {
		t.Error("a missing provisioner minted a token")
	}
}
