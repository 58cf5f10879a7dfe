package audit

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func TestVerifyAcceptsAnIntactLog(t *testing.T) {
	name := writeLog(t, 10)
	reps, err := Verify([]string{name}, VerifyOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if want := (FileReport{Name: name, Records: 10, FirstSeq: 1, LastSeq: 10}); !reflect.DeepEqual(reps[0], want) {
		t.Fatalf("report %+v, want %+v", reps[0], want)
	}
}

func TestVerifyDetectsTampering(t *testing.T) {
	other := readLines(t, writeLog(t, 3)) // a second, unrelated chain
	tests := []struct {
		name     string
		tamper   func(lines []string) []string
		wantLine int
		wantErr  string
	}{
		{"edited value", func(l []string) []string {
			l[3] = strings.Replace(l[3], `"decision":"allow"`, `"decision":"deny"`, 1)
			return l
		}, 4, "edited"},
		{"edited and rehashed", func(l []string) []string {
			r, _ := checkLine([]byte(l[3]), nil, nil)
			r.Host = "innocent.example"
			body, _ := encodeBody(&r)
			line, _ := seal(body, r.Seq, r.Prev, newSum(nil))
			l[3] = strings.TrimSuffix(string(line), "\n")
			return l
		}, 5, "prev does not match"},
		{"deleted line", func(l []string) []string {
			return append(l[:4], l[5:]...)
		}, 5, "1 record(s) missing"},
		{"deleted last line still verifies", nil, 0, ""},
		{"reordered lines", func(l []string) []string {
			l[2], l[3] = l[3], l[2]
			return l
		}, 3, "missing"},
		{"duplicated line", func(l []string) []string {
			return append(l[:5], l[4:]...)
		}, 6, "reordered or duplicated"},
		{"another chain appended", func(l []string) []string {
			return append(l, other...)
		}, 11, "new chain starts here"},
		{"not JSON", func(l []string) []string {
			l[6] = "hello"
			return l
		}, 7, "not a JSON audit record"},
		{"hash removed", func(l []string) []string {
			l[1] = l[1][:strings.LastIndex(l[1], `,"hash"`)] + "}"
			return l
		}, 2, `does not end with a "hash"`},
		{"hash field added twice", func(l []string) []string {
			l[1] = strings.Replace(l[1], `"seq":2,`, `"seq":2,"hash":"x",`, 1)
			return l
		}, 2, "edited"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			name := writeLog(t, 10)
			if tt.tamper == nil {
				l := readLines(t, name)
				writeLines(t, name, l[:len(l)-1])
				if _, err := Verify([]string{name}, VerifyOptions{}); err != nil {
					t.Fatalf("dropping the newest line is not detectable by the chain, yet: %v", err)
				}
				return
			}
			writeLines(t, name, tt.tamper(readLines(t, name)))
			_, err := Verify([]string{name}, VerifyOptions{})
			var ce *ChainError
			if !errors.As(err, &ce) {
				t.Fatalf("Verify: %v; want a ChainError", err)
			}
			if ce.Line != tt.wantLine || !strings.Contains(ce.Error(), tt.wantErr) || ce.Name != name {
				t.Fatalf("Verify: %v; want line %d of %s saying %q", err, tt.wantLine, name, tt.wantErr)
			}
		})
	}
}

func TestVerifyAcceptsALogWhoseOlderFilesWereDropped(t *testing.T) {
	name := writeLog(t, 6)
	lines := readLines(t, name)
	writeLines(t, name, lines[2:])
	reps, err := Verify([]string{name}, VerifyOptions{})
	if err != nil || reps[0].FirstSeq != 3 {
		t.Fatalf("%+v, %v; want a chain starting at seq 3", reps, err)
	}
}

func TestVerifyDetectsAGapBetweenFiles(t *testing.T) {
	lines := readLines(t, writeLog(t, 9))
	dir := t.TempDir()
	a, b := filepath.Join(dir, "a"), filepath.Join(dir, "b")
	writeLines(t, a, lines[:3])
	writeLines(t, b, lines[4:])
	_, err := Verify([]string{a, b}, VerifyOptions{})
	var ce *ChainError
	if !errors.As(err, &ce) || ce.Name != b || ce.Line != 1 {
		t.Fatalf("Verify across a gap: %v; want the first line of %s", err, b)
	}
}

func TestVerifyReportsAMissingFile(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "nope.jsonl")
	if _, err := Verify([]string{missing}, VerifyOptions{}); err == nil || !strings.Contains(err.Error(), missing) {
		t.Fatalf("Verify on a missing file: %v; want an error naming it", err)
	}
}

func TestVerifyReadsStandardInput(t *testing.T) {
	name := writeLog(t, 4)
	f, err := os.Open(name)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	saved := os.Stdin
	os.Stdin = f
	defer func() { os.Stdin = saved }()
	reps, err := Verify([]string{Stdin}, VerifyOptions{})
	if err != nil || reps[0].Name != Stdin || reps[0].Records != 4 {
		t.Fatalf("Verify(-): %+v, %v; want 4 records", reps, err)
	}
}
