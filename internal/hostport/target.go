package hostport

import (
	"errors"
	"fmt"
	"net/url"
	"strings"
)

// ParseTarget validates an X-Target-URL value and returns it normalised:
// scheme http or https, a host (lower-cased, canonical IP) and an explicit
// port (80 or 443 when absent), no user info, no fragment. The URL's path is
// the base path that the request's path is appended to (see JoinPath).
//
// Errors name the target but never its password.
func ParseTarget(raw string) (*url.URL, error) {
	shown := redactUserinfo(raw)
	for i := 0; i < len(raw); i++ {
		if c := raw[i]; c <= ' ' || c == 0x7f {
			return nil, fmt.Errorf("target %q contains a space or control character at byte %d", shown, i)
		}
	}
	if !strings.Contains(raw, "://") {
		return nil, fmt.Errorf("target %q has no scheme (want http://host[:port][/base] or https://…)", shown)
	}
	u, err := url.Parse(raw)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return nil, fmt.Errorf("target %q is not a valid URL: %v", shown, err)
	}
	defaultPort := 0
	switch u.Scheme {
	case "http":
		defaultPort = 80
	case "https":
		defaultPort = 443
	default:
		return nil, fmt.Errorf("target %q has unsupported scheme %q (want http or https)", shown, u.Scheme)
	}
	if u.User != nil {
		return nil, fmt.Errorf("target %q must not contain user info (put credentials in headers, not in the URL)", shown)
	}
	if u.Fragment != "" || strings.Contains(raw, "#") {
		return nil, fmt.Errorf("target %q must not contain a fragment (#…)", shown)
	}
	if u.Host == "" {
		return nil, fmt.Errorf("target %q has no host", shown)
	}
	host, port, err := parse(u.Host, defaultPort)
	if err != nil {
		return nil, fmt.Errorf("target %q has a bad host: %v", shown, err)
	}
	u.Host = Join(host, port)
	return u, nil
}

// JoinPath appends the request's path and query to the target's base path
// and query: target "http://h/v1?a=1" with "/api/tags", "x=1" gives
// "/v1/api/tags", "a=1&x=1". Paths are in decoded form, as in url.URL.Path;
// the query is raw, as in url.URL.RawQuery. One slash separates the base
// from the request path whatever either ends or starts with.
func JoinPath(target *url.URL, reqPath, rawQuery string) (path, query string) {
	base := target.Path
	switch {
	case reqPath == "":
		path = base
	case base == "" || base == "/":
		path = reqPath
	default:
		path = strings.TrimSuffix(base, "/") + "/" + strings.TrimPrefix(reqPath, "/")
	}
	if path == "" {
		path = "/"
	} else if path[0] != '/' {
		path = "/" + path
	}
	switch {
	case target.RawQuery == "":
		query = rawQuery
	case rawQuery == "":
		query = target.RawQuery
	default:
		query = target.RawQuery + "&" + rawQuery
	}
	return path, query
}

// redactUserinfo hides whatever sits between "://" and "@" in the authority,
// so a credential typed into a target URL never reaches an error or a log.
func redactUserinfo(raw string) string {
	i := strings.Index(raw, "://")
	if i < 0 {
		return raw
	}
	rest := raw[i+3:]
	end := strings.IndexAny(rest, "/?#")
	if end < 0 {
		end = len(rest)
	}
	at := strings.LastIndexByte(rest[:end], '@')
	if at < 0 {
		return raw
	}
	return raw[:i+3] + "xxxxx" + rest[at:]
}
