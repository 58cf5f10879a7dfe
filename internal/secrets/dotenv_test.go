package secrets

import (
	"errors"
	"strings"
	"testing"
)

func TestParseDotenvSyntax(t *testing.T) {
	in := "\xef\xbb\xbf# a comment\n" +
		"\n" +
		"PLAIN=ghp_plainvalue123\n" +
		"   INDENTED=  spaced value  \n" +
		"export EXPORTED=exp0rted\n" +
		"export\tTABBED=tab\n" +
		"SPACES = around\n" +
		"COMMENTED=value # trailing comment\n" +
		"HASH=abc#def\n" +
		"LEADHASH=#notacomment\n" +
		"SINGLE='lit $HOME \\n \"q\" # kept'\n" +
		"DOUBLE=\"a\\nb\\tc \\\"q\\\" \\\\ \\$x \\' \\r\"  # comment\n" +
		"EMPTY=\n" +
		"EMPTYQ=\"\"\n" +
		"MULTI=\"-----BEGIN KEY-----\n" +
		"line2\n" +
		"-----END KEY-----\"\n" +
		"MULTISINGLE='x\r\ny'\r\n" +
		"CRLF=crlfvalue\r\n" +
		"DUP=first\n" +
		"DUP=second\n" +
		"NOEOL=last"
	entries, err := parseDotenv([]byte(in))
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	lines := map[string]int{}
	for _, e := range entries {
		got[e.key] = string(e.value)
		lines[e.key] = e.line
	}
	want := map[string]string{
		"PLAIN":       "ghp_plainvalue123",
		"INDENTED":    "spaced value",
		"EXPORTED":    "exp0rted",
		"TABBED":      "tab",
		"SPACES":      "around",
		"COMMENTED":   "value",
		"HASH":        "abc#def",
		"LEADHASH":    "#notacomment",
		"SINGLE":      `lit $HOME \n "q" # kept`,
		"DOUBLE":      "a\nb\tc \"q\" \\ $x ' \r",
		"EMPTY":       "",
		"EMPTYQ":      "",
		"MULTI":       "-----BEGIN KEY-----\nline2\n-----END KEY-----",
		"MULTISINGLE": "x\ny",
		"CRLF":        "crlfvalue",
		"DUP":         "second",
		"NOEOL":       "last",
	}
	for k, w := range want {
		if g, ok := got[k]; !ok || g != w {
			t.Errorf("%s = %q (set %v), want %q", k, g, ok, w)
		}
	}
	if len(got) != len(want) {
		t.Errorf("got %d variables %v, want %d", len(got), got, len(want))
	}
	for k, w := range map[string]int{"PLAIN": 3, "MULTI": 15, "MULTISINGLE": 18, "CRLF": 20, "NOEOL": 23} {
		if lines[k] != w {
			t.Errorf("%s is on line %d, want %d", k, lines[k], w)
		}
	}
}

func TestParseDotenvErrors(t *testing.T) {
	// Every value holds s3cr and M4: no message may show it.
	cases := []struct {
		name, in string
		line     int
		key, msg string
	}{
		{"pasted token alone", "OK=1\nghp_s3cr3tM4rk\n", 2, "", msgNoEquals},
		{"bad key", "A=1\n\n9KEY=s3cr3tM4rk\n", 3, "", msgNoKey},
		{"key with dash", "MY-KEY=s3cr3tM4rk\n", 1, "", msgNoKey},
		{"only equals", "=s3cr3tM4rk\n", 1, "", msgNoKey},
		{"unclosed single", "A=1\nK='s3cr3tM4rk\nmore\n", 2, "K", msgOpenSingle},
		{"unclosed double", "K=\"s3cr3tM4rk\n\n", 1, "K", msgOpenDouble},
		{"bad escape", "K=\"s3cr\\qM4rk\"\n", 1, "K", msgBadEscape},
		{"bad escape on later line", "K=\"s3cr\nM4\\xrk\"\n", 2, "K", msgBadEscape},
		{"text after quote", "K=\"s3cr\"M4rk\n", 1, "K", msgAfterQuote},
		{"NUL", "K=s3cr\x00M4rk\n", 1, "K", msgNUL},
		{"export alone", "export   \n", 1, "", msgExportAlone},
		{"export with a pasted token", "export s3cr3tM4rk\n", 1, "", msgNoEquals},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := parseDotenv([]byte(c.in))
			var de *DotenvError
			if !errors.As(err, &de) {
				t.Fatalf("err = %v, want a *DotenvError", err)
			}
			if de.Line != c.line || de.Key != c.key || de.Msg != c.msg {
				t.Errorf("got line %d key %q msg %q, want line %d key %q msg %q", de.Line, de.Key, de.Msg, c.line, c.key, c.msg)
			}
			for _, leak := range []string{"s3cr", "M4", "ghp_"} {
				if strings.Contains(err.Error(), leak) {
					t.Errorf("error %q shows part of the value (%q)", err, leak)
				}
			}
		})
	}
}

func TestDotenvErrorNamesFileAndLine(t *testing.T) {
	err := &DotenvError{Path: "/app/.env", Line: 7, Key: "K", Msg: msgNoEquals}
	want := `secrets: .env file "/app/.env" line 7 (K): ` + msgNoEquals
	if err.Error() != want {
		t.Errorf("got %q, want %q", err, want)
	}
}
