package token

import (
	"encoding/json"
	"fmt"
	"os"

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
