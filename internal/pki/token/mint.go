package token

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"strings"
	"time"

	"go.step.sm/crypto/jose"
)

// Lifetime is how long a minted token is valid, as with `step ca token`.
const Lifetime = 5 * time.Minute

// Request describes one token to mint.
type Request struct {
	Key         *jose.JSONWebKey // the provisioner's private key (kid taken from it)
	Provisioner string           // iss
	CAURL       string           // aud becomes CAURL + "/1.0/sign"
	Subject     string           // sub: the certificate's CN
	SANs        []string         // defaults to [Subject], as step does
	RootSHA     string           // sha: hex SHA-256 of the root, pins trust for bootstrap
	Now         time.Time        // zero means time.Now(); tests set it to mint expired tokens
}

// Claims is the payload of a step-ca JWK token.
type Claims struct {
	jose.Claims
	SHA  string   `json:"sha,omitempty"`
	SANs []string `json:"sans,omitempty"`
}

// Mint signs a one-time token for r.
func Mint(r Request) (string, error) {
	if r.Key == nil {
		return "", fmt.Errorf("token: no provisioner key to sign with")
	}
	if r.Subject == "" {
		return "", fmt.Errorf("token: empty subject; give the name the certificate is for (e.g. agent-1)")
	}
	if r.Provisioner == "" || r.CAURL == "" {
		return "", fmt.Errorf("token: provisioner name and CA URL are both required")
	}
	now := r.Now
	if now.IsZero() {
		now = time.Now()
	}
	sans := r.SANs
	if len(sans) == 0 {
		sans = []string{r.Subject}
	}
	alg := r.Key.Algorithm
	if alg == "" {
		alg = string(jose.ES256)
	}
	so := new(jose.SignerOptions)
	so.WithType("JWT")
	so.WithHeader("kid", r.Key.KeyID)
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.SignatureAlgorithm(alg), Key: r.Key.Key}, so)
	if err != nil {
		return "", fmt.Errorf("token: cannot sign with the %s key of provisioner %q: %w", alg, r.Provisioner, err)
	}
	jti := make([]byte, 32)
	if _, err := rand.Read(jti); err != nil {
		return "", fmt.Errorf("token: no randomness for the token id: %w", err)
	}
	c := Claims{
		Claims: jose.Claims{
			ID:        hex.EncodeToString(jti),
			Issuer:    r.Provisioner,
			Subject:   r.Subject,
			Audience:  jose.Audience{SignURL(r.CAURL)},
			IssuedAt:  jose.NewNumericDate(now),
			NotBefore: jose.NewNumericDate(now),
			Expiry:    jose.NewNumericDate(now.Add(Lifetime)),
		},
		SHA:  strings.ToLower(r.RootSHA),
		SANs: sans,
	}
	tok, err := jose.Signed(signer).Claims(c).Serialize()
	if err != nil {
		return "", fmt.Errorf("token: cannot serialize the token: %w", err)
	}
	return tok, nil
}

// SignURL is the audience step-ca expects in a token for POST /sign.
func SignURL(caURL string) string {
	return strings.TrimRight(caURL, "/") + "/1.0/sign"
}

// MintFrom mints r with the key of the JWK provisioner r.Provisioner among
// provisioners (as the CA publishes them, or its ca.json lists them),
// decrypted with password (a trailing newline, as a password file has, is
// not part of it). The one way slapenir certs token, ca run and up mint.
func MintFrom(provisioners []Provisioner, password []byte, r Request) (string, error) {
	p, err := FindProvisioner(provisioners, r.Provisioner)
	if err != nil {
		return "", err
	}
	key, err := DecryptKey(p, []byte(strings.TrimRight(string(password), "\r\n")))
	if err != nil {
		return "", err
	}
	r.Key = key
	return Mint(r)
}
