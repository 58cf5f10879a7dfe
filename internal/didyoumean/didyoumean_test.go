package didyoumean

import "testing"

func TestSuggest(t *testing.T) {
	names := []string{"listen", "policy", "audit", "limits"}
	for word, want := range map[string]string{"polcy": "policy", "listne": "listen", "audi": "audit", "x": "", "limit": "limits", "foo": ""} {
		if got := Suggest(word, names); got != want {
			t.Errorf("Suggest(%q) = %q, want %q", word, got, want)
		}
	}
}
