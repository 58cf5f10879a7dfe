// Package dlpsamples holds a secret-shaped sample of every dlp rule, and
// text that must not match any, for the tests of dlp and of the proxy.
// The samples are built from pieces so that no file holds anything a
// secret scanner would take for a real key; none is a real key.
//
// It must only be imported from tests.
package dlpsamples

import "strings"

// Sample is one secret-shaped text and the rule that must find it.
type Sample struct{ Rule, Text string }

// Randomish is a value that looks generated; Secrets are the samples, at
// least one per rule.
var (
	Randomish = "Zr8q2LmX9vTn4KwP7sJd3HfB"
	Secrets   = []Sample{
		{"aws_access_key", "AKIA" + "Q3EXAMPLE7KEYZ2X"},
		{"aws_access_key", "ASIA" + "Q3EXAMPLE7KEYZ2X"},
		{"github_token", "ghp_" + strings.Repeat("aB3d", 9)},
		{"github_token", "ghs_" + strings.Repeat("Zx9Y", 9)},
		{"github_token", "github_pat_" + strings.Repeat("11AbCdEfG_", 8) + "xy"},
		{"gitlab_token", "glpat-" + strings.Repeat("xY7z", 5)},
		{"slack_token", "xoxb-" + "1234567890-abcdefABCDEF"},
		{"slack_token", "https://hooks.slack.com/services/" + "T0ABC1234/B0DEF5678/" + "aBcDeFgHiJkLmNoP"},
		{"stripe_key", "sk_live_" + "4eC39HqLyjWDarjtT1zdp7dc"},
		{"stripe_key", "rk_test_" + "4eC39HqLyjWDarjtT1zdp7dc"},
		{"anthropic_key", "sk-ant-api03-" + strings.Repeat("Ab3_", 10)},
		{"openai_key", "sk-proj-" + strings.Repeat("Ab3-", 10)},
		{"openai_key", "sk-" + strings.Repeat("aB3d", 5) + "T3Blbk" + "FJ" + strings.Repeat("Qw9e", 5)},
		{"private_key", "-----BEGIN " + "RSA PRIVATE KEY-----"},
		{"private_key", "-----BEGIN " + "OPENSSH PRIVATE KEY-----"},
		{"private_key", "-----BEGIN " + "PRIVATE KEY-----"},
		{"private_key", "-----BEGIN " + "PGP PRIVATE KEY BLOCK-----"},
		{"jwt", "eyJ" + "hbGciOiJIUzI1NiJ9" + "." + "eyJ" + "zdWIiOiIxMjM0NTY3ODkwIn0" + "." + "SflKxwRJSMeKKF2QT4fwpM"},
		{"generic_secret", `api_key = "` + Randomish + `"`},
		{"generic_secret", "X-Api-Key: " + Randomish},
		{"generic_secret", `{"password": "` + Randomish + `"}`},
		{"generic_secret", "Authorization: Bearer " + Randomish},
		{"generic_secret", "client_secret=" + Randomish + "&grant_type=client_credentials"},
	}
	// Benign are things agents send every day that must not be taken for
	// secrets.
	Benign = []string{
		"the token is in the vault; ask for the password politely",
		"password: correct horse battery staple",
		"api_key = YOUR_API_KEY_HERE_PLEASE",
		"Authorization: Bearer DUMMY_GITHUB_TOKEN",
		`secret = os.Getenv("SECRET_VALUE")`,
		"func (t *Token) Secret() string { return t.secretValue }",
		"request_id=123e4567-e89b-12d3-a456-426614174000",
		"sk-short AKIAlowercase0123456 ghp_tooShort eyJhbGciOiJIUzI1NiJ9",
		"-----BEGIN CERTIFICATE-----\nMIIB...\n-----END CERTIFICATE-----",
		"-----BEGIN PUBLIC KEY-----",
		"pk_live_" + "4eC39HqLyjWDarjtT1zdp7dc", // publishable: public by design
		"xAKIA" + "Q3EXAMPLE7KEYZ2X",            // inside a longer word
		"token: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
		"path=/usr/local/lib/python3.12/site-packages/requests",
		strings.Repeat("lorem ipsum dolor sit amet, consectetur adipiscing elit. ", 40),
	}
)
