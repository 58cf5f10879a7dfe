package policy

import "testing"

// TestNarrowedDenyFailsClosed: under default allow, a deny rule narrowed to
// paths or methods refuses every spelling an upstream may read as a path or
// method the rule names: dot and empty segments (which servers resolve or
// merge), encoded dots, slashes, backslashes and percent signs, backslashes,
// ";" parameters, and a method in any case. An allow rule narrowed the same
// way lets none of those spellings through either: for it, not matching is
// the safe failure.
func TestNarrowedDenyFailsClosed(t *testing.T) {
	const host = "files.example"
	paths := mustNew(t, Config{Default: "allow", Deny: []Rule{{Host: host, Paths: []string{"/admin/**"}}}})
	methods := mustNew(t, Config{Default: "allow", Deny: []Rule{{Host: host, Methods: []string{"DELETE"}}}})
	allow := mustNew(t, Config{Default: "deny", Allow: []Rule{{Host: host, Methods: []string{"GET"}, Paths: []string{"/public/**"}}}})

	for _, path := range []string{
		"/admin/users",
		"/x/../admin/users",
		"//admin/users",
		"/./admin",
		"/admin//users",
		"/%2e/admin/users",
		"/%2E/admin/users",
		"/x/%2e%2e/admin/users",
		"/x/.%2e/admin/users",
		"/x/%2e./admin/users",
		"/%2fadmin/users",
		"/admin%2Fusers",
		"/x/..%2fadmin/users",
		"/x%5c..%5cadmin/users",
		"/x\\..\\admin/users",
		"/admin\\users",
		"/admin;jsessionid=1/users",
		"/x/..;/admin/users",
		"/%61dmin/users",            // an encoded letter: the upstream decodes it
		"/x/%252e%252e/admin/users", // double encoding, for upstreams that decode twice
		"/admin%00/users",
		"/x/%c0%ae%c0%ae/admin/users", // overlong UTF-8 dots
		"/%zz/admin",                  // not an escape at all
		"/x/.../admin/users",
		"*",
	} {
		if d := paths.DecideRequest(host, 80, "GET", path); d.Allow || d.Reason != ReasonPathDenied {
			t.Errorf("deny /admin/**: GET %s = %+v, want path_denied", path, d)
		}
		if d := allow.DecideRequest(host, 80, "GET", path); d.Allow {
			t.Errorf("allow only /public/**: GET %s = %+v, want refused", path, d)
		}
		// The same spelling under the allowed prefix: an allow rule must
		// not judge what it cannot read as inside /public.
		if path != "*" && path != "/admin/users" && path != "/%61dmin/users" {
			if d := allow.DecideRequest(host, 80, "GET", "/public"+path); d.Allow {
				t.Errorf("allow only /public/**: GET /public%s = %+v, want refused", path, d)
			}
		}
	}
	for _, path := range []string{"/", "/public", "/admins", "/x/admin/users", "/file.txt", "/a%20b", "/caf%C3%A9", "/admin.", "/ADMIN/users"} {
		if d := paths.DecideRequest(host, 80, "GET", path); !d.Allow || d.Reason != ReasonDefaultAllow {
			t.Errorf("deny /admin/**: GET %s = %+v, want default_allow", path, d)
		}
	}
	for _, path := range []string{"/public", "/public/", "/public/a/b.txt", "/public/a%20b", "/public/caf%C3%A9", "/public/%41"} {
		if d := allow.DecideRequest(host, 80, "GET", path); !d.Allow || d.Reason != ReasonAllowlist {
			t.Errorf("allow only /public/**: GET %s = %+v, want allowlist", path, d)
		}
	}

	for _, m := range []string{"DELETE", "delete", "Delete", "dELETE"} {
		if d := methods.DecideRequest(host, 80, m, "/x"); d.Allow || d.Reason != ReasonMethodDenied {
			t.Errorf("deny DELETE: %s /x = %+v, want method_denied", m, d)
		}
	}
	if d := methods.DecideRequest(host, 80, "DELETES", "/x"); !d.Allow {
		t.Errorf("deny DELETE: DELETES /x = %+v, want allowed (another method)", d)
	}
	for _, m := range []string{"get", "Get"} {
		if d := allow.DecideRequest(host, 80, m, "/public/x"); d.Allow || d.Reason != ReasonMethodDenied {
			t.Errorf("allow only GET: %s /public/x = %+v, want method_denied (an upstream may not read it as GET)", m, d)
		}
	}

	// A trailing "/" (nginx, Express without strict routing and Spring
	// before 6 serve "/admin/" as "/admin") and HEAD (Go's ServeMux and most
	// frameworks run a GET handler for it) reach what a deny rule names.
	exact := mustNew(t, Config{Default: "allow", Deny: []Rule{
		{Host: host, Paths: []string{"/admin", "/slash/"}},
		{Host: host, Methods: []string{"GET"}, Paths: []string{"/secret/*"}},
	}})
	for _, c := range []struct{ method, path, reason string }{
		{"GET", "/admin", ReasonPathDenied},
		{"GET", "/admin/", ReasonPathDenied},
		{"GET", "/%61dmin/", ReasonPathDenied},
		{"POST", "/admin/", ReasonPathDenied},
		{"GET", "/slash/", ReasonPathDenied},
		{"GET", "/slash", ReasonPathDenied},
		{"GET", "/secret/x", ReasonPathDenied},
		{"GET", "/secret/x/", ReasonPathDenied},
		{"HEAD", "/secret/x", ReasonPathDenied},
		{"HEAD", "/secret/x/", ReasonPathDenied},
		{"head", "/secret/x", ReasonPathDenied},
	} {
		if d := exact.DecideRequest(host, 80, c.method, c.path); d.Allow || d.Reason != c.reason {
			t.Errorf("deny /admin, /slash/ and GET /secret/*: %s %s = %+v, want %s", c.method, c.path, d, c.reason)
		}
	}
	for _, c := range []struct{ method, path string }{
		{"GET", "/"},
		{"GET", "/admin/x"},
		{"GET", "/admins/"},
		{"GET", "/slash/x"},
		{"GET", "/secret/x/y"},
		{"GET", "/secret/x/y/"},
		{"POST", "/secret/x/"},
		{"OPTIONS", "/secret/x"},
	} {
		if d := exact.DecideRequest(host, 80, c.method, c.path); !d.Allow {
			t.Errorf("deny /admin, /slash/ and GET /secret/*: %s %s = %+v, want allowed (not what the rules name)", c.method, c.path, d)
		}
	}
	// A deny of "/admin/**" already covered "/admin/" ("**" is any number
	// of segments, the empty last one included).
	if d := paths.DecideRequest(host, 80, "GET", "/admin/"); d.Allow || d.Reason != ReasonPathDenied {
		t.Errorf("deny /admin/**: GET /admin/ = %+v, want path_denied", d)
	}
	// For an allow rule neither widening applies: not matching is its safe
	// failure, so GET allows neither HEAD nor a path with a "/" added.
	getOnly := mustNew(t, Config{Default: "deny", Allow: []Rule{{Host: host, Methods: []string{"GET"}, Paths: []string{"/public"}}}})
	for _, c := range []struct{ method, path string }{{"HEAD", "/public"}, {"GET", "/public/"}} {
		if d := getOnly.DecideRequest(host, 80, c.method, c.path); d.Allow {
			t.Errorf("allow only GET /public: %s %s = %+v, want refused", c.method, c.path, d)
		}
	}
}

// TestCaseInsensitivePaths: a rule for an upstream whose paths ignore case
// says so, and then matches every case; other rules match case exactly.
func TestCaseInsensitivePaths(t *testing.T) {
	const host = "iis.example"
	p := mustNew(t, Config{Default: "allow", Deny: []Rule{{Host: host, Paths: []string{"/admin/**"}, CaseInsensitivePaths: true}}})
	for _, path := range []string{"/admin/x", "/ADMIN/x", "/Admin", "/x/../aDmIn"} {
		if d := p.DecideRequest(host, 443, "GET", path); d.Allow || d.Reason != ReasonPathDenied {
			t.Errorf("deny /admin/** in any case: GET %s = %+v, want path_denied", path, d)
		}
	}
	if d := p.DecideRequest(host, 443, "GET", "/public"); !d.Allow {
		t.Errorf("deny /admin/** in any case: GET /public = %+v, want allowed", d)
	}
	allow := mustNew(t, Config{Default: "deny", Allow: []Rule{{Host: host, Paths: []string{"/Public/**"}, CaseInsensitivePaths: true}}})
	if d := allow.DecideRequest(host, 443, "GET", "/PUBLIC/x"); !d.Allow {
		t.Errorf("allow /Public/** in any case: GET /PUBLIC/x = %+v, want allowed", d)
	}
	if _, err := New(Config{Deny: []Rule{{Host: host, CaseInsensitivePaths: true}}}); err == nil {
		t.Error("case_insensitive_paths without paths was accepted")
	}
}
