package proxy

import "testing"

func TestParseServerRejection(t *testing.T) {
	cases := []struct {
		in     string
		status int
		ok     bool
	}{
		{"HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain; charset=utf-8\r\nConnection: close\r\n\r\n400 Bad Request: missing required Host header", 400, true},
		{"HTTP/1.1 431 Request Header Fields Too Large\r\nContent-Type: text/plain; charset=utf-8\r\nConnection: close\r\n\r\n431 Request Header Fields Too Large", 431, true},
		// A handler's reply: net/http sorts its header fields, so Connection
		// comes first; and it has Date. Never a rejection.
		{"HTTP/1.1 403 Forbidden\r\nConnection: close\r\nContent-Type: text/plain; charset=utf-8\r\nDate: Thu, 26 Nov 2026 17:00:00 GMT\r\n\r\n{}", 0, false},
		{"HTTP/1.1 200 OK\r\nContent-Type: text/plain; charset=utf-8\r\nConnection: close\r\n\r\nok", 0, false},
		{"HTTP/1.1 40", 0, false},
		{"garbage", 0, false},
	}
	for _, c := range cases {
		status, _, ok := parseServerRejection([]byte(c.in))
		if ok != c.ok || status != c.status {
			t.Errorf("%.40q: got %d %v, want %d %v", c.in, status, ok, c.status, c.ok)
		}
	}
}
