package secrets

import (
	"bytes"
	"errors"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// FuzzParseDotenv checks that any input either parses into entries that
// survive being written back and read again, or fails with a DotenvError
// whose text is built only from a fixed message, a line number and a
// variable name that really is followed by "=" in the input — so no error
// can carry a value. Seeds are in testdata/fuzz/FuzzParseDotenv.
func FuzzParseDotenv(f *testing.F) {
	f.Add([]byte("A=1\nexport B='two'\nC=\"x\\ny\" # c\n"))
	keyRe := regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)
	f.Fuzz(func(t *testing.T, data []byte) {
		entries, err := parseDotenv(data)
		if err != nil {
			var de *DotenvError
			if !errors.As(err, &de) {
				t.Fatalf("error %v is not a *DotenvError", err)
			}
			if !slices.Contains(dotenvMessages, de.Msg) {
				t.Fatalf("message %q is not one of the fixed messages", de.Msg)
			}
			if de.Line < 1 || de.Line > bytes.Count(data, []byte("\n"))+1 {
				t.Fatalf("line %d outside the input's %d lines", de.Line, bytes.Count(data, []byte("\n"))+1)
			}
			if de.Key != "" {
				if !keyRe.MatchString(de.Key) {
					t.Fatalf("key %q is not a variable name", de.Key)
				}
				// A leading byte order mark is skipped, as editors write it.
				if !regexp.MustCompile(`(^\x{FEFF}?|[\s])` + de.Key + `[ \t\r]*=`).Match(data) {
					t.Fatalf("key %q is named but never assigned in the input", de.Key)
				}
			}
			return
		}
		var buf bytes.Buffer
		for _, e := range entries {
			if !keyRe.MatchString(e.key) {
				t.Fatalf("parsed key %q is not a variable name", e.key)
			}
			buf.WriteString(e.key + "=")
			buf.Write(quoteDotenv(e.value))
			buf.WriteByte('\n')
		}
		again, err := parseDotenv(buf.Bytes())
		if err != nil {
			t.Fatalf("re-reading %q: %v", buf.String(), err)
		}
		if len(again) != len(entries) {
			t.Fatalf("re-read %d entries, want %d", len(again), len(entries))
		}
		for i := range entries {
			if again[i].key != entries[i].key || !bytes.Equal(again[i].value, entries[i].value) {
				t.Fatalf("entry %d: re-read %s=%q, want %s=%q", i, again[i].key, again[i].value, entries[i].key, entries[i].value)
			}
			if strings.Contains(entries[i].key, "=") {
				t.Fatalf("key %q contains =", entries[i].key)
			}
		}
	})
}

// quoteDotenv writes value as a double-quoted .env value that parseDotenv
// reads back unchanged.
func quoteDotenv(value []byte) []byte {
	out := []byte{'"'}
	for _, c := range value {
		switch c {
		case '\\', '"', '$':
			out = append(out, '\\', c)
		case '\n':
			out = append(out, '\\', 'n')
		case '\r':
			out = append(out, '\\', 'r')
		default:
			out = append(out, c)
		}
	}
	return append(out, '"')
}
