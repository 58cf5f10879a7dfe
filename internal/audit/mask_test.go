package audit

import (
	"strings"
	"testing"
)

func TestMaskPath(t *testing.T) {
	tests := []struct{ in, want string }{
		{"", ""},
		{"/", "/"},
		{"/api/tags", "/api/tags"},
		{"/v1/models?limit=10&order=asc", "/v1/models?limit=10&order=asc"},
		{"/x?token=abc", "/x?token=***"},
		{"/x?api_key=abc&q=cats", "/x?api_key=***&q=cats"},
		{"/x?q=cats&apikey=abc&page=2", "/x?q=cats&apikey=***&page=2"},
		{"/x?apiKey=abc", "/x?apiKey=***"},
		{"/x?API-KEY=abc", "/x?API-KEY=***"},
		{"/x?key=AIzaSy123", "/x?key=***"},
		{"/x?secret=s&client_secret=s2", "/x?secret=***&client_secret=***"},
		{"/x?password=p&passwd=p&pwd=p&pass=p", "/x?password=***&passwd=***&pwd=***&pass=***"},
		{"/x?auth=a&Authorization=Bearer%20x", "/x?auth=***&Authorization=***"},
		{"/x?access_token=a&refresh_token=b&id_token=c", "/x?access_token=***&refresh_token=***&id_token=***"},
		{"/b/o?X-Amz-Algorithm=AWS4&X-Amz-Credential=AKIA%2F2026&X-Amz-Signature=ff&X-Amz-Security-Token=tt",
			"/b/o?X-Amz-Algorithm=AWS4&X-Amz-Credential=***&X-Amz-Signature=***&X-Amz-Security-Token=***"},
		{"/c?sv=2024&sig=abc%2Fdef&se=2026", "/c?sv=2024&sig=***&se=2026"},
		{"/cb?code=4%2F0Ad&state=xyz", "/cb?code=***&state=xyz"},
		{"/x?session=s&PHPSESSID=p&sessionid=q", "/x?session=***&PHPSESSID=***&sessionid=***"},
		{"/x?credential=c&credentials=d", "/x?credential=***&credentials=***"},
		{"/x?signature=s&oauth_signature=t", "/x?signature=***&oauth_signature=***"},
		{"/x?%74oken=abc", "/x?%74oken=***"},                     // percent-encoded key
		{"/x?user%5Bpassword%5D=p", "/x?user%5Bpassword%5D=***"}, // user[password]
		{"/x?token=", "/x?token=***"},
		{"/x?token", "/x?token"}, // no value to hide
		{"/x?token=a=b", "/x?token=***"},
		{"/x?a=1;token=abc;b=2", "/x?a=1;token=***;b=2"},
		{"/x?a=1&&token=t&", "/x?a=1&&token=***&"},
		{"/x?a=1#access_token=t&b=2", "/x?a=1#access_token=***&b=2"},
		{"/cb#access_token=t", "/cb#access_token=***"},
		{"/x?next=/y?token=t", "/x?next=/y?token=***"},
		{"/x?author=ann&keyword=go&monkey=1", "/x?author=ann&keyword=go&monkey=1"},
		{"/x?%zz=1&token=%zz", "/x?%zz=1&token=***"}, // invalid escapes
		{"http://user:hunter2@example.com/p?q=1", "http://user:***@example.com/p?q=1"},
		{"https://ghp_abc@github.com/o/r.git", "https://***@github.com/o/r.git"},
		{"http://example.com/a@b", "http://example.com/a@b"}, // '@' in the path is no userinfo
		{"/p?q=x\x00y&token=\xff", "/p?q=x\x00y&token=***"},
	}
	for _, tt := range tests {
		if got := MaskPath(tt.in); got != tt.want {
			t.Errorf("MaskPath(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

// FuzzMaskPath checks MaskPath against its contract: it never panics; the path
// is kept (and a URL's userinfo password hidden); the query keeps every
// separator, key and non-sensitive segment byte for byte; and every segment with
// a sensitive key and a value comes back as key=***. Seeds:
// testdata/fuzz/FuzzMaskPath.
func FuzzMaskPath(f *testing.F) {
	f.Add("/v1/chat?api_key=sk-123&stream=true")
	f.Fuzz(func(t *testing.T, in string) {
		got := MaskPath(in)

		head, query := cutQuery(in)
		gotHead, gotQuery := cutQuery(got)
		if !strings.Contains(head, "://") && gotHead != head {
			t.Fatalf("MaskPath(%q) = %q: path changed", in, got)
		}
		if user, pass, ok := userinfo(head); ok && pass != "" && strings.Contains(authority(gotHead), user+":"+pass+"@") {
			t.Fatalf("MaskPath(%q) = %q: userinfo password kept", in, got)
		}

		seps, segs := segments(query)
		gotSeps, gotSegs := segments(gotQuery)
		if string(seps) != string(gotSeps) {
			t.Fatalf("MaskPath(%q) = %q: separators %q became %q", in, got, seps, gotSeps)
		}
		for i, seg := range segs {
			want := seg
			if key, _, ok := strings.Cut(seg, "="); ok && sensitiveKey(key) {
				want = key + "=" + Masked
			}
			if gotSegs[i] != want {
				t.Fatalf("MaskPath(%q) = %q: segment %q became %q, want %q", in, got, seg, gotSegs[i], want)
			}
		}
	})
}

// cutQuery splits s before its first '?' or '#'.
func cutQuery(s string) (head, query string) {
	if i := strings.IndexAny(s, "?#"); i >= 0 {
		return s[:i], s[i:]
	}
	return s, ""
}

// segments splits a query (which starts with a separator) into its separators
// and the segments following each.
func segments(query string) (seps []byte, segs []string) {
	for i := 0; i < len(query); {
		seps = append(seps, query[i])
		j := i + 1
		for j < len(query) && !strings.ContainsRune(querySeparators, rune(query[j])) {
			j++
		}
		segs = append(segs, query[i+1:j])
		i = j
	}
	return seps, segs
}

// authority is what lies between the first "://" and the next '/'.
func authority(head string) string {
	_, rest, _ := strings.Cut(head, "://")
	a, _, _ := strings.Cut(rest, "/")
	return a
}

// userinfo finds user:pass in scheme://user:pass@host/….
func userinfo(head string) (user, pass string, ok bool) {
	_, rest, ok := strings.Cut(head, "://")
	if !ok {
		return "", "", false
	}
	authority, _, _ := strings.Cut(rest, "/")
	at := strings.LastIndex(authority, "@")
	if at < 0 {
		return "", "", false
	}
	user, pass, ok = strings.Cut(authority[:at], ":")
	return user, pass, ok
}

func TestSensitiveKeyLeavesOrdinaryKeysAlone(t *testing.T) {
	for _, k := range []string{"q", "limit", "page", "model", "stream", "author", "keyword", "state", "format", "lang", "sort"} {
		if sensitiveKey(k) {
			t.Errorf("sensitiveKey(%q) = true; its value would be hidden for nothing", k)
		}
	}
}
