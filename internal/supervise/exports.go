package supervise

import (
	"bufio"
	"os"
	"regexp"
	"strings"
)

var exportLine = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*=`)

// readExports adds the KEY=VALUE lines a oneshot wrote to $SLAPENIR_EXPORT
// to the environment of every service started after it, and returns how many.
// Values are never logged: a oneshot may export a token.
func (sv *supervisor) readExports(s *service) int {
	f, err := os.Open(s.exportPath)
	if err != nil {
		return 0
	}
	defer f.Close()
	n := 0
	sc := bufio.NewScanner(f)
	for line := 1; sc.Scan(); line++ {
		text := strings.TrimSpace(sc.Text())
		if text == "" || strings.HasPrefix(text, "#") {
			continue
		}
		if !exportLine.MatchString(text) {
			sv.log.initf("%s: export file line %d ignored: want KEY=VALUE", s.conf.Name, line)
			continue
		}
		sv.exports = mergeEnv(sv.exports, []string{text})
		n++
	}
	return n
}
