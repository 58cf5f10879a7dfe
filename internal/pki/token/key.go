package token

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"

	"go.step.sm/crypto/jose"
)

// Provisioner is the part of a step-ca JWK provisioner this package needs, in
// the shape both ca.json and GET /provisioners use.
type Provisioner struct {
	Type         string           `json:"type"`
	Name         string           `json:"name"`
	Key          *jose.JSONWebKey `json:"key"`
	EncryptedKey string           `json:"encryptedKey,omitempty"`
}

// FindProvisioner picks the JWK provisioner called name out of list.
func FindProvisioner(list []Provisioner, name string) (Provisioner, error) {
	var names []string
	for _, p := range list {
		if p.Name == name && p.Type == "JWK" {
			return p, nil
		}
		names = append(names, p.Name+" ("+p.Type+")")
	}
	return Provisioner{}, fmt.Errorf("token: the CA has no JWK provisioner named %q (it has: %v); set STEP_PROVISIONER or --provisioner to one of those", name, names)
}

// ProvisionersFromCAJSON reads the provisioners out of a step-ca ca.json.
func ProvisionersFromCAJSON(path string) ([]Provisioner, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("token: cannot read CA config %s: %w", path, err)
	}
	var cfg struct {
		Authority struct {
			Provisioners []Provisioner `json:"provisioners"`
		} `json:"authority"`
	}
	if err := json.Unmarshal(data, &cfg); err != nil {
		return nil, fmt.Errorf("token: %s is not a valid step-ca ca.json: %w", path, err)
	}
	return cfg.Authority.Provisioners, nil
}

// DecryptKey recovers the provisioner's private signing key from its
// encryptedKey (a JWE) with password. The error never contains the password.
func DecryptKey(p Provisioner, password []byte) (*jose.JSONWebKey, error) {
	if p.EncryptedKey == "" {
		return nil, fmt.Errorf("token: provisioner %q publishes no encryptedKey; mint tokens where its private key is available", p.Name)
	}
	jwk, err := jose.ParseKey([]byte(p.EncryptedKey), jose.WithPassword(password))
	if err != nil {
		return nil, fmt.Errorf("token: cannot decrypt the key of provisioner %q: wrong password? (check --password-file): %w", p.Name, jose.TrimPrefix(err))
	}
	if jwk.IsPublic() {
		return nil, fmt.Errorf("token: the encryptedKey of provisioner %q holds no private key", p.Name)
	}
	if jwk.KeyID == "" && p.Key != nil {
		jwk.KeyID = p.Key.KeyID
	}
	return jwk, nil
}

// RootPathFromCAJSON returns the root certificate path named in a ca.json
// (read from data); a relative path is taken relative to the ca.json's
// directory.
func RootPathFromCAJSON(path string, data []byte) (string, error) {
	var cfg struct {
		Root json.RawMessage `json:"root"`
	}
	if err := json.Unmarshal(data, &cfg); err != nil {
		return "", fmt.Errorf("token: %s is not a valid step-ca ca.json: %w", path, err)
	}
	var root string
	if err := json.Unmarshal(cfg.Root, &root); err != nil {
		var roots []string // "root" may also be a list
		if err := json.Unmarshal(cfg.Root, &roots); err != nil || len(roots) == 0 {
			return "", fmt.Errorf("token: %s names no root certificate; pass --root", path)
		}
		root = roots[0]
	}
	if root == "" {
		return "", fmt.Errorf("token: %s names no root certificate; pass --root", path)
	}
	if !filepath.IsAbs(root) {
		root = filepath.Join(filepath.Dir(path), root)
	}
	return root, nil
}
