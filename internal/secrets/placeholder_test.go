package secrets

import (
	"bytes"
	"strings"
	"testing"
)

func TestDefaultPlaceholder(t *testing.T) {
	for name, want := range map[string]string{
		"github":    "DUMMY_GITHUB",
		"OpenAI":    "DUMMY_OPENAI",
		"my-api":    "DUMMY_MY_API",
		"aws_key_2": "DUMMY_AWS_KEY_2",
	} {
		if got := DefaultPlaceholder(name); got != want {
			t.Errorf("DefaultPlaceholder(%q) = %q, want %q", name, got, want)
		}
	}
}

func TestShapedPlaceholderKeepsPrefixLengthAndShape(t *testing.T) {
	key := bytes.Repeat([]byte{7}, 32)
	cases := []struct{ value, prefix string }{
		{"ghp_" + "aB3dE5gH7jK9mN1pQ3sT5vW7yZ9bC1dE3fG5", "ghp_"},
		{"github_pat_11ABCDEFG0123456789_abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789ab", "github_pat_"},
		{"sk-" + "abcdefghijklmnopqrstuvwxyzABCDEFGHIJ012345", "sk-"},
		{"sk-proj-" + "Ab12Cd34Ef56Gh78Ij90Kl12Mn34Op56", "sk-proj-"},
		{"sk-ant-api03-" + "abcDEF123_ghiJKL456-mnoPQR789stuVWX012yzaBCD345efg", "sk-ant-api03-"},
		{"xoxb-" + "123456789012-1234567890123-AbCdEfGhIjKlMnOpQrStUvWx", "xoxb-"},
		{"AKIA" + "IOSFODNN7EXAMPLE", "AKIA"},
		{"plainhexvalue0123456789abcdef", ""},
	}
	for _, c := range cases {
		ph, err := shapedPlaceholder(key, "cred", []byte(c.value), 0)
		if err != nil {
			t.Fatalf("%s…: %v", c.prefix, err)
		}
		if !strings.HasPrefix(string(ph), c.prefix) {
			t.Errorf("%q does not keep the prefix %q", ph, c.prefix)
		}
		if len(ph) != len(c.value) {
			t.Errorf("%q is %d bytes, the value %d", ph, len(ph), len(c.value))
		}
		if bytes.Contains(ph, []byte(c.value)) {
			t.Errorf("placeholder equals the value %q", c.value)
		}
		classes := func(s []byte) (lo, up, dig bool) {
			for _, ch := range s {
				lo = lo || ch >= 'a' && ch <= 'z'
				up = up || ch >= 'A' && ch <= 'Z'
				dig = dig || ch >= '0' && ch <= '9'
			}
			return
		}
		vl, vu, vd := classes([]byte(c.value[len(c.prefix):]))
		pl, pu, pd := classes(ph[len(c.prefix):])
		if pl && !vl || pu && !vu || pd && !vd {
			t.Errorf("%q uses a character class %q does not have", ph, c.value)
		}
		for i := len(c.prefix); i < len(ph); i++ {
			if isAlnum(c.value[i]) != isAlnum(ph[i]) || !isAlnum(ph[i]) && ph[i] != c.value[i] {
				t.Errorf("%q: byte %d is %q where the value has %q (separators stay in place)", ph, i, ph[i], c.value[i])
			}
		}
		again, _ := shapedPlaceholder(key, "cred", []byte(c.value), 0)
		if !bytes.Equal(ph, again) {
			t.Errorf("same key, name and attempt gave %q then %q", ph, again)
		}
		other, _ := shapedPlaceholder(bytes.Repeat([]byte{8}, 32), "cred", []byte(c.value), 0)
		next, _ := shapedPlaceholder(key, "cred", []byte(c.value), 1)
		if bytes.Equal(ph, other) || bytes.Equal(ph, next) {
			t.Errorf("another key or attempt gave the same placeholder %q", ph)
		}
	}
}

func TestShapedPlaceholderNeverEqualsTheValue(t *testing.T) {
	// The smallest space allowed: eight digits after the prefix. Over many
	// keys the generator must never hand back the value itself; Open also
	// checks and retries, this checks the generator does not favour it.
	value := []byte("sk-12345678")
	for i := range 2000 {
		key := []byte{byte(i), byte(i >> 8)}
		ph, err := shapedPlaceholder(key, "n", value, 0)
		if err != nil {
			t.Fatal(err)
		}
		if bytes.Equal(ph, value) {
			t.Fatalf("key %d gave the value itself", i)
		}
	}
}

func TestShapedPlaceholderRefusesTooLittleRandomness(t *testing.T) {
	for _, v := range []string{"ghp_abc-----", "sk-_________________", "AKIA1234567"} {
		if _, err := shapedPlaceholder([]byte("k"), "n", []byte(v), 0); err != errTooShortForShape {
			t.Errorf("%q: err = %v, want errTooShortForShape", v, err)
		}
	}
}
