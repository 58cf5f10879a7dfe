package config

import (
	"errors"
	"fmt"
	"os"

	"github.com/slapenir/slapenir/internal/yamlcheck"
)

// Load reads the file at path, overlays it on Default and validates the
// result. Every error is a *Problems.
func Load(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, &Problems{File: path, List: []Problem{{Msg: fmt.Sprintf("cannot read the configuration file: %v", err)}}}
	}
	return Parse(path, data)
}

// Parse decodes data (named name in problems) over Default and validates
// the result. Keys absent from the file keep their default; a key given as
// null (or left empty) keeps its default too; a list in the file replaces
// the default list. Every error is a *Problems.
func Parse(name string, data []byte) (*Config, error) {
	c := Default()
	c.name = name
	c.lines = map[string]int{}
	probs := &Problems{File: name}

	d := yamlcheck.Decoder{Lines: c.lines}
	if top := yamlcheck.Document(probs, data); top != nil {
		d.Decode("", top, c)
	} else if len(probs.List) > 0 {
		return nil, probs.OrNil() // a syntax error: nothing to decode
	}
	probs.List = append(probs.List, d.Problems.List...)
	c.fillRoleDefaults()
	if len(probs.List) > 0 {
		// The values that did decode are validated too, so one run shows
		// every problem; a key that failed to decode kept its (valid)
		// default, and a line that already has a problem gets no second
		// one in other words.
		var vp *Problems
		if errors.As(c.Validate(), &vp) {
			had := map[int]bool{}
			for _, p := range probs.List {
				had[p.Line] = true
			}
			for _, p := range vp.List {
				if !had[p.Line] {
					probs.List = append(probs.List, p)
				}
			}
		}
		return nil, probs.OrNil()
	}
	if err := c.Validate(); err != nil {
		return nil, err
	}
	return c, nil
}
