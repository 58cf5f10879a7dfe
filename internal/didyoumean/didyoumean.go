// Package didyoumean suggests the word a user probably meant, for the
// configuration checks of config and policy. It owns the rule of what is
// close enough; it must not know the words.
package didyoumean

import (
	"fmt"
	"strconv"
	"strings"
)

// Suggest returns the candidate closest to word when it is close enough to
// be a plausible typo (at most two edits, and fewer than half the word),
// or "".
func Suggest(word string, candidates []string) string {
	best, bestDist := "", 3
	for _, c := range candidates {
		if d := editDistance(word, c); d < bestDist && d*2 < len(c) {
			best, bestDist = c, d
		}
	}
	return best
}

// editDistance is the Levenshtein distance between a and b.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// OneOf says what is wrong with got when it is none of want:
// `"enforcing" is not "enforce" or "report" (did you mean "enforce"?)`,
// or "" when it is one of them.
func OneOf(got string, want ...string) string {
	for _, w := range want {
		if got == w {
			return ""
		}
	}
	quoted := make([]string, len(want))
	for i, w := range want {
		quoted[i] = strconv.Quote(w)
	}
	msg := fmt.Sprintf("%q is not %s", got, strings.Join(quoted, " or "))
	if s := Suggest(got, want); s != "" {
		msg += fmt.Sprintf(" (did you mean %q?)", s)
	}
	return msg
}
