package hostport

import (
	"net/url"
	"strings"
	"testing"
)

func TestParseTarget(t *testing.T) {
	ok := []struct {
		in, want, port string
	}{
		{"http://host.docker.internal:11434", "http://host.docker.internal:11434", "11434"},
		{"http://example.com", "http://example.com:80", "80"},
		{"https://example.com", "https://example.com:443", "443"},
		{"HTTPS://Example.COM./v1", "https://example.com:443/v1", "443"},
		{"http://[::1]:8080/base/", "http://[::1]:8080/base/", "8080"},
		{"http://127.0.0.1:11434/v1?key=x", "http://127.0.0.1:11434/v1?key=x", "11434"},
	}
	for _, c := range ok {
		u, err := ParseTarget(c.in)
		if err != nil {
			t.Errorf("ParseTarget(%q): %v", c.in, err)
			continue
		}
		if u.String() != c.want || u.Port() != c.port {
			t.Errorf("ParseTarget(%q) = %q port %q; want %q port %q", c.in, u, u.Port(), c.want, c.port)
		}
	}

	bad := []struct{ in, want string }{
		{"ftp://x", `target "ftp://x" has unsupported scheme "ftp" (want http or https)`},
		{"file:///etc/passwd", `unsupported scheme "file"`},
		{"gopher://x:70", `unsupported scheme "gopher"`},
		{"localhost:11434", "has no scheme"},
		{"example.com/v1", "has no scheme"},
		{"", "has no scheme"},
		{"http://", "has no host"},
		{"http:///path", "has no host"},
		{"http://user:hunter2@example.com/", "must not contain user info"},
		{"http://user@example.com/", "must not contain user info"},
		{"http://example.com/#frag", "must not contain a fragment"},
		{"http://example.com/#", "must not contain a fragment"},
		{"http://example.com:0/", "out of range"},
		{"http://example.com:99999/", "out of range"},
		{"http://example.com:x/", "not a valid URL"},
		{"http://exa mple.com/", "space or control"},
		{"http://example.com/\r\nX: y", "space or control"},
		{"http://a..b/", "empty label"},
		{"http://[fe80::1%25eth0]/", "bad host"},
		{"http://%zz/", "not a valid URL"},
	}
	for _, c := range bad {
		u, err := ParseTarget(c.in)
		if err == nil {
			t.Errorf("ParseTarget(%q) = %q; want an error containing %q", c.in, u, c.want)
			continue
		}
		if !strings.Contains(err.Error(), c.want) {
			t.Errorf("ParseTarget(%q) error %q does not contain %q", c.in, err, c.want)
		}
	}
}

func TestParseTargetNeverShowsPassword(t *testing.T) {
	for _, in := range []string{
		"http://user:hunter2@example.com/",
		"ftp://user:hunter2@example.com/",
		"http://user:hunter2@exa mple.com/",
		"http://user:hunter2@example.com:99999/",
		"http://user:hun@ter2@example.com/#x",
	} {
		_, err := ParseTarget(in)
		if err == nil {
			t.Fatalf("ParseTarget(%q) accepted a URL with user info", in)
		}
		if strings.Contains(err.Error(), "hunter2") || strings.Contains(err.Error(), "ter2") {
			t.Errorf("ParseTarget(%q) error leaks the password: %v", in, err)
		}
	}
}

func TestJoinPath(t *testing.T) {
	cases := []struct {
		target, path, query string
		wantPath, wantQuery string
	}{
		{"http://h:1", "/api/tags", "", "/api/tags", ""},
		{"http://h:1/", "/api/tags", "", "/api/tags", ""},
		{"http://h:1/v1", "/api/tags", "x=1", "/v1/api/tags", "x=1"},
		{"http://h:1/v1/", "/api/tags", "x=1", "/v1/api/tags", "x=1"},
		{"http://h:1/v1", "api/tags", "", "/v1/api/tags", ""},
		{"http://h:1/v1", "", "", "/v1", ""},
		{"http://h:1/v1", "/", "", "/v1/", ""},
		{"http://h:1", "", "", "/", ""},
		{"http://h:1/v1?key=a", "/chat", "stream=1", "/v1/chat", "key=a&stream=1"},
		{"http://h:1/v1?key=a", "/chat", "", "/v1/chat", "key=a"},
		{"http://h:1/a%2Fb", "/c d", "", "/a/b/c d", ""},
	}
	for _, c := range cases {
		u, err := url.Parse(c.target)
		if err != nil {
			t.Fatal(err)
		}
		p, q := JoinPath(u, c.path, c.query)
		if p != c.wantPath || q != c.wantQuery {
			t.Errorf("JoinPath(%q, %q, %q) = %q, %q; want %q, %q", c.target, c.path, c.query, p, q, c.wantPath, c.wantQuery)
		}
	}
}
