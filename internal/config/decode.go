package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"reflect"
	"regexp"
	"strconv"
	"strings"

	"github.com/slapenir/slapenir/internal/yamlcheck"
	"go.yaml.in/yaml/v3"
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

	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	switch err := dec.Decode(&doc); {
	case errors.Is(err, io.EOF):
		return c, c.Validate()
	case err != nil:
		probs.List = append(probs.List, syntaxProblem(data, err))
		return nil, probs.OrNil()
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); err == nil {
		probs.List = append(probs.List, Problem{Line: extra.Line, Msg: "a second YAML document (---) follows; put everything in one"})
	} else if !errors.Is(err, io.EOF) {
		probs.List = append(probs.List, syntaxProblem(data, err))
	}

	d := decoder{lines: c.lines}
	if len(doc.Content) > 0 {
		d.value("", doc.Content[0], reflect.ValueOf(c).Elem())
	}
	probs.List = append(probs.List, d.probs.List...)
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

var yamlLine = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)

// syntaxProblem turns a YAML parser error into a Problem with its line.
// The parser's own line is unreliable (often the line of the enclosing
// mapping, sometimes none at all), so the line is taken to be the first
// one at which a prefix of the file fails with the same message, found by
// bisection: a prefix that contains the mistake fails the same way.
func syntaxProblem(data []byte, err error) Problem {
	line, msg := 0, strings.TrimPrefix(err.Error(), "yaml: ")
	if m := yamlLine.FindStringSubmatch(err.Error()); m != nil {
		line, _ = strconv.Atoi(m[1])
		msg = m[2]
	}
	lines := bytes.SplitAfter(data, []byte("\n"))
	failsSame := func(k int) bool {
		return prefixError(bytes.Join(lines[:k], nil)) == msg
	}
	if n := len(lines); failsSame(n) {
		lo, hi := 1, n
		for lo < hi {
			mid := lo + (hi-lo)/2
			if failsSame(mid) {
				hi = mid
			} else {
				lo = mid + 1
			}
		}
		line = lo
	}
	return Problem{Line: line, Msg: "YAML syntax error: " + msg}
}

// prefixError is the parser's message for data without its "yaml: line N:"
// prefix, or "" when data parses.
func prefixError(data []byte) string {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	for {
		var n yaml.Node
		err := dec.Decode(&n)
		if errors.Is(err, io.EOF) {
			return ""
		}
		if err != nil {
			if m := yamlLine.FindStringSubmatch(err.Error()); m != nil {
				return m[2]
			}
			return strings.TrimPrefix(err.Error(), "yaml: ")
		}
	}
}

// decoder walks a yaml.Node tree beside a Go value, guided by the yaml
// tags of the structs, so that every problem is found with its line and an
// unknown key is an error instead of being silently ignored.
type decoder struct {
	probs yamlcheck.Problems
	lines map[string]int // dotted key path ("policy.allow[2]") → line
}

func (d *decoder) problem(n *yaml.Node, format string, args ...any) {
	d.probs.Add(n.Line, format, args...)
}

var unmarshalerType = reflect.TypeFor[yaml.Unmarshaler]()

// value decodes n into v. path names the key for messages; "" is the top.
func (d *decoder) value(path string, n *yaml.Node, v reflect.Value) {
	for n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	if _, known := d.lines[path]; !known && path != "" {
		d.lines[path] = n.Line
	}
	if n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null" {
		return
	}
	if sc, ok := v.Addr().Interface().(interface{ SetScalar(string) }); ok && n.Kind == yaml.ScalarNode {
		// A type with a short form (a Rule written as its host alone).
		sc.SetScalar(n.Value)
		return
	}
	if reflect.PointerTo(v.Type()).Implements(unmarshalerType) {
		if err := n.Decode(v.Addr().Interface()); err != nil {
			d.problem(n, "%s: %v", path, err)
		}
		return
	}
	switch v.Kind() {
	case reflect.Struct:
		d.mapping(path, n, v)
	case reflect.Slice:
		if n.Kind != yaml.SequenceNode {
			d.problem(n, "%s: want a list (one item per line starting with \"- \", or [a, b]), got %s", path, yamlcheck.Describe(n))
			return
		}
		s := reflect.MakeSlice(v.Type(), len(n.Content), len(n.Content))
		for i, item := range n.Content {
			d.value(fmt.Sprintf("%s[%d]", path, i), item, s.Index(i))
		}
		v.Set(s)
	case reflect.Pointer:
		p := reflect.New(v.Type().Elem())
		d.value(path, n, p.Elem())
		v.Set(p)
	default:
		if n.Kind != yaml.ScalarNode {
			d.problem(n, "%s: want %s, got %s", path, describeType(v.Type()), yamlcheck.Describe(n))
			return
		}
		if err := n.Decode(v.Addr().Interface()); err != nil {
			d.problem(n, "%s: want %s, got %q", path, describeType(v.Type()), n.Value)
		}
	}
}

func (d *decoder) mapping(path string, n *yaml.Node, v reflect.Value) {
	if n.Kind != yaml.MappingNode {
		where := "at the top level"
		if path != "" {
			where = "in " + path
		}
		d.problem(n, "want a mapping of keys %s, got %s", where, yamlcheck.Describe(n))
		return
	}
	fields := map[string]int{}
	var names []string
	for i := 0; i < v.NumField(); i++ {
		f := v.Type().Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if !f.IsExported() || name == "" || name == "-" {
			continue
		}
		fields[name] = i
		names = append(names, name)
	}
	yamlcheck.Keys(&d.probs, path, n, names, func(key string, k, val *yaml.Node) {
		// A problem with a whole section or list is reported on its key's
		// line, not on the line its first item happens to be on.
		d.lines[yamlcheck.Join(path, key)] = k.Line
		d.value(yamlcheck.Join(path, key), val, v.Field(fields[key]))
	})
}

// describeType says in words what a value of type t is written as.
func describeType(t reflect.Type) string {
	switch t.Kind() {
	case reflect.Bool:
		return "true or false"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "a whole number"
	case reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.String:
		return "a string"
	case reflect.Pointer:
		return describeType(t.Elem())
	}
	return t.String()
}
