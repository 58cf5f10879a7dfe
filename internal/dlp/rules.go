package dlp

import (
	"math"
	"regexp"
	"slices"
)

// A rule is one kind of secret: a name (the proxy refuses with reason
// dlp_<name>), the literal prefixes every match starts with, and the
// expression, tried only where one of them occurs: searching for a few
// literals runs at memory speed, where an unanchored expression would
// crawl through every byte.
type rule struct {
	name   string
	starts []string
	// fold makes the search for starts case-insensitive (they are
	// written in lower case).
	fold bool
	// lead requires a word boundary before the match: "xAKIA…" is not a key.
	lead bool
	re   *regexp.Regexp // anchored at the start
	// value, when set, is the submatch that must look random (entropy).
	value int
	// ahead, when set, is a quick test of the bytes from a start on that
	// must hold for re to match there: where starts are common words
	// ("token" in code), it keeps the expression from running at each.
	ahead func(b []byte) bool
}

// anchored compiles an expression that must match where it is tried.
func anchored(expr string) *regexp.Regexp { return regexp.MustCompile(`^(?:` + expr + `)`) }

// Each expression bounds its repetition so that every match fits in
// Window: a stream scanner that holds back Window bytes then sees each
// secret whole, with context on both sides, before passing any of it on.
var rules = []rule{
	// AWS access key IDs: "AKIA" (long-term) and "ASIA" (temporary) and the
	// other unique-identifier prefixes, then 16 upper-case letters and
	// digits. Source: AWS IAM User Guide, "IAM identifiers", unique ID
	// prefixes.
	{name: "aws_access_key", starts: []string{"AKIA", "ASIA", "ABIA", "ACCA"}, lead: true,
		re: anchored(`(?:AKIA|ASIA|ABIA|ACCA)[A-Z0-9]{16}\b`)},
	// GitHub tokens: ghp_ (classic personal), gho_ (OAuth), ghu_ (user to
	// server), ghs_ (server to server), ghr_ (refresh), 36 base62
	// characters after the prefix; fine-grained tokens are github_pat_
	// with 82. Source: GitHub blog, "Behind GitHub's new authentication
	// token formats" (2021) and GitHub Docs, "About authentication to GitHub".
	{name: "github_token", starts: []string{"ghp_", "gho_", "ghu_", "ghs_", "ghr_", "github_pat_"}, lead: true,
		re: anchored(`gh[pousr]_[A-Za-z0-9]{36}|github_pat_[A-Za-z0-9_]{82}`)},
	// GitLab tokens: glpat- (personal, project and group access tokens) and
	// the other documented prefixes, 20 or more URL-safe characters.
	// Source: GitLab Docs, "Token overview: GitLab tokens, token prefixes".
	{name: "gitlab_token", starts: []string{"glpat-", "gldt-", "glrt-", "glptt-", "glcbt-", "gloas-", "glsoat-", "glft-", "glimt-", "glagent-"}, lead: true,
		re: anchored(`gl(?:pat|dt|rt|ptt|cbt|oas|soat|ft|imt|agent)-[A-Za-z0-9_-]{20}`)},
	// Slack tokens: xoxb- (bot), xoxp- (user), xoxa-/xoxr- (app, refresh),
	// xoxe- (rotating), xoxs-/xoxo-, and incoming webhooks. Source: Slack
	// API docs, "Token types".
	{name: "slack_token", starts: []string{"xox"}, lead: true,
		re: anchored(`xox[abposre]-[0-9A-Za-z-]{10}`)},
	{name: "slack_token", starts: []string{"hooks.slack.com/services/"},
		re: anchored(`hooks\.slack\.com/services/T[0-9A-Z]{6,12}/B[0-9A-Z]{6,12}/[0-9A-Za-z]{16}`)},
	// Stripe secret and restricted keys (publishable pk_ keys are public):
	// sk_live_, sk_test_, rk_live_, rk_test_. Source: Stripe Docs, "API keys".
	{name: "stripe_key", starts: []string{"sk_live_", "sk_test_", "rk_live_", "rk_test_"}, lead: true,
		re: anchored(`[sr]k_(?:live|test)_[0-9A-Za-z]{16}`)},
	// Anthropic API and admin keys: sk-ant-api03-…, sk-ant-admin01-….
	// Source: Anthropic Console and API docs (key format "sk-ant-api03-").
	{name: "anthropic_key", starts: []string{"sk-ant-"}, lead: true,
		re: anchored(`sk-ant-(?:api|admin)[0-9]{2}-[A-Za-z0-9_-]{32}`)},
	// OpenAI API keys: project, service-account and admin keys
	// (sk-proj-, sk-svcacct-, sk-admin-), and the older user keys whose
	// middle is "T3BlbkFJ" (base64 of "OpenAI"). Source: OpenAI API
	// reference, "Authentication"; the T3BlbkFJ marker as published in
	// OpenAI's secret-scanning partner pattern.
	{name: "openai_key", starts: []string{"sk-"}, lead: true,
		re: anchored(`sk-(?:proj|svcacct|admin)-[A-Za-z0-9_-]{32}|sk-[A-Za-z0-9]{20}T3BlbkFJ[A-Za-z0-9]{20}`)},
	// PEM private keys of any type (RSA, EC, OPENSSH, ENCRYPTED, PKCS #8)
	// and PGP private key blocks. Source: RFC 7468 §2 (encapsulation
	// boundaries and labels), RFC 4880 §6.2 (armor headers).
	{name: "private_key", starts: []string{"-----BEGIN "},
		re: anchored(`-----BEGIN (?:[A-Z0-9]{1,12} ){0,3}PRIVATE KEY(?: BLOCK)?-----`)},
	// JSON Web Tokens: three base64url parts, the first two JSON objects,
	// so both start "eyJ" (base64url of `{"`); the header and the start of
	// the payload identify one. Source: RFC 7519 §3, RFC
	// 7515 §7.1 (compact serialization).
	{name: "jwt", starts: []string{"eyJ"}, lead: true,
		re: anchored(`eyJ[A-Za-z0-9_-]{10,200}\.eyJ[A-Za-z0-9_-]{10}`)},
	// A value that looks random (see looksRandom), 20 to 128 characters,
	// assigned to a name that says it is a secret: api_key=…, "token": "…",
	// X-Api-Key: …, password: …, Authorization: Bearer …. The pattern of
	// the assignment follows the generic rules of secret scanners
	// (gitleaks' generic-api-key); the entropy bound is this package's.
	{name: "generic_secret", fold: true,
		starts: []string{"api", "access", "secret", "token", "passw", "auth", "credential"},
		re:     anchored(`(?i:api[_-]?key|access[_-]?key|secret|token|passw(?:or)?d|auth(?:orization)?|credentials?)[A-Za-z0-9_.-]{0,20}["']?\s{0,3}[:=]\s{0,3}["']?(?:(?i:bearer|token|basic)\s{1,3})?([A-Za-z0-9+/_.~=-]{20,128})`),
		value:  1, ahead: assignedValue},
}

// Window is how many bytes a stream scanner holds back: more than the
// longest match of any rule (the generic rule's name, assignment and
// 128-character value, about 190), so that no secret is passed on before
// it can be seen whole (TestRulesFitTheWindow).
const Window = 256

// Rules are the names of the rules, in the order they are tried.
func Rules() []string {
	var out []string
	for _, r := range rules {
		if !slices.Contains(out, r.name) {
			out = append(out, r.name)
		}
	}
	return out
}

// assignedValue is the generic rule's expression in brief: a name, at
// most three spaces, ':' or '=', and then (after spaces, a quote and a
// scheme word) a run of at least 20 value characters.
func assignedValue(b []byte) bool {
	i := 0
	for i < len(b) && i < 40 && isNameChar(b[i]) {
		i++
	}
	if i < len(b) && (b[i] == '"' || b[i] == '\'') {
		i++
	}
	i = skipSpace(b, i)
	if i >= len(b) || b[i] != ':' && b[i] != '=' {
		return false
	}
	i = skipSpace(b, i+1)
	if i < len(b) && (b[i] == '"' || b[i] == '\'') {
		i++
	}
	for word := 0; word < 2; word++ { // the value, or a scheme word and then the value
		n := 0
		for i+n < len(b) && isValueChar(b[i+n]) {
			n++
		}
		if n >= 20 {
			return true
		}
		i = skipSpace(b, i+n)
	}
	return false
}

func isNameChar(c byte) bool { return isWord(c) || c == '.' || c == '-' }

func isValueChar(c byte) bool {
	return isWord(c) || c == '+' || c == '/' || c == '.' || c == '~' || c == '=' || c == '-'
}

func skipSpace(b []byte, i int) int {
	for k := 0; k < 3 && i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r' || b[i] == '\f' || b[i] == '\v'); k++ {
		i++
	}
	return i
}

// looksRandom says whether v is a plausible generated secret rather than a
// word, a path or a placeholder name: both letters and digits, and at least
// 3.5 bits of entropy per character (English words and identifiers score
// under 3.3 at these lengths; base62 keys near 5).
func looksRandom(v []byte) bool {
	var letters, digits bool
	var counts [256]int
	for _, c := range v {
		counts[c]++
		switch {
		case c >= '0' && c <= '9':
			digits = true
		case c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z':
			letters = true
		}
	}
	if !letters || !digits {
		return false
	}
	n := float64(len(v))
	h := 0.0
	for _, k := range counts {
		if k > 0 {
			p := float64(k) / n
			h -= p * math.Log2(p)
		}
	}
	return h >= 3.5
}
