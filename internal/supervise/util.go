package supervise

import (
	"strconv"
	"strings"
)

func itoa(n int) string { return strconv.Itoa(n) }

// mergeEnv combines KEY=VALUE lists, later lists overriding earlier ones,
// keeping the order in which each key first appeared.
func mergeEnv(lists ...[]string) []string {
	index := map[string]int{}
	var out []string
	for _, l := range lists {
		for _, kv := range l {
			k, _, _ := strings.Cut(kv, "=")
			if i, ok := index[k]; ok {
				out[i] = kv
				continue
			}
			index[k] = len(out)
			out = append(out, kv)
		}
	}
	return out
}
