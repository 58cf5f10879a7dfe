package safetext

import (
	"errors"
	"net/url"
	"testing"
)

func TestCut(t *testing.T) {
	for in, want := range map[string]string{
		"GET":                    "GET",
		"a\x00b\nc\x7f":          "a?b?c?",
		"x\u2028y\u2029z":        "x?y?z",
		"\xff\xfe":               "??",
		"ü/日本":                   "ü/日本",
		"abcdefghijklmnopqrstuv": "abcdefghij…",
		"ééééééé":                "ééééé…", // not cut inside a character
	} {
		if got := Cut(in, 10); got != want {
			t.Errorf("Cut(%q, 10) = %q, want %q", in, got, want)
		}
	}
}

func TestURLError(t *testing.T) {
	inner := errors.New("connection refused")
	if got := URLError(&url.Error{Op: "Get", URL: "http://x/?token=secret", Err: inner}); got != inner {
		t.Errorf("URLError kept %v", got)
	}
	if got := URLError(inner); got != inner {
		t.Errorf("URLError changed a plain error: %v", got)
	}
}
