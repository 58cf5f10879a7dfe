package yamlcheck

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// Document parses data as one YAML document and returns its top node, or
// nil for an empty file or a syntax error (then a problem). A second
// document (---) is a problem too: everything belongs in one.
func Document(probs *Problems, data []byte) *yaml.Node {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	switch err := dec.Decode(&doc); {
	case errors.Is(err, io.EOF):
		return nil
	case err != nil:
		probs.List = append(probs.List, syntaxProblem(data, err))
		return nil
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); err == nil {
		probs.Add(extra.Line, "a second YAML document (---) follows; put everything in one")
	} else if !errors.Is(err, io.EOF) {
		probs.List = append(probs.List, syntaxProblem(data, err))
	}
	if len(doc.Content) == 0 {
		return nil
	}
	return doc.Content[0]
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

// Decoder walks a yaml.Node tree beside a Go value, guided by the yaml
// tags of the structs, so that every problem is found with its line and an
// unknown key is an error instead of being silently ignored. A key the file
// leaves out keeps the value it had, so a value filled with defaults first
// is overlaid by the file.
type Decoder struct {
	Problems Problems
	// Lines, when not nil, records the line of every dotted key path the
	// file sets ("policy.allow[2]"), for checks made after decoding.
	Lines map[string]int
}

// NodeDecoder is a type that decodes itself from its node, reporting on
// d: a mapping whose keys are data (kept in the file's order), or a
// section with defaults and checks across its keys.
type NodeDecoder interface {
	DecodeNode(d *Decoder, path string, n *yaml.Node)
}

// ScalarSetter is a type with a short form: a single value that stands for
// the whole (a rule written as its host alone).
type ScalarSetter interface {
	SetScalar(string)
}

var (
	unmarshalerType  = reflect.TypeFor[yaml.Unmarshaler]()
	nodeDecoderType  = reflect.TypeFor[NodeDecoder]()
	scalarSetterType = reflect.TypeFor[ScalarSetter]()
	durationType     = reflect.TypeFor[time.Duration]()
)

// Add notes a problem at n's line.
func (d *Decoder) Add(n *yaml.Node, format string, args ...any) {
	d.Problems.Add(n.Line, format, args...)
}

// Decode decodes n, found at path ("" is the top), into what ptr points to.
func (d *Decoder) Decode(path string, n *yaml.Node, ptr any) {
	d.value(path, n, reflect.ValueOf(ptr).Elem())
}

func (d *Decoder) value(path string, n *yaml.Node, v reflect.Value) {
	n = Resolve(n)
	if _, known := d.Lines[path]; !known && path != "" && d.Lines != nil {
		d.Lines[path] = n.Line
	}
	if n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null" {
		return
	}
	pt := reflect.PointerTo(v.Type())
	switch {
	case pt.Implements(nodeDecoderType):
		v.Addr().Interface().(NodeDecoder).DecodeNode(d, path, n)
		return
	case pt.Implements(scalarSetterType) && n.Kind == yaml.ScalarNode:
		v.Addr().Interface().(ScalarSetter).SetScalar(n.Value)
		return
	case pt.Implements(unmarshalerType):
		if err := n.Decode(v.Addr().Interface()); err != nil {
			d.Add(n, "%s: %v", path, err)
		}
		return
	case v.Type() == durationType:
		dur, err := ParseDuration(n)
		if err == nil && dur < 0 {
			err = fmt.Errorf("%s must not be negative", dur)
		}
		if err != nil {
			d.Add(n, "%s: %v", path, err)
			return
		}
		v.SetInt(int64(dur))
		return
	}
	switch v.Kind() {
	case reflect.Struct:
		d.fields(path, n, v)
	case reflect.Slice:
		if !d.Expect(path, n, yaml.SequenceNode) {
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
			d.Add(n, "%s: want %s, got %s", path, describeType(v.Type()), Describe(n))
			return
		}
		if err := n.Decode(v.Addr().Interface()); err != nil {
			d.Add(n, "%s: want %s, got %q", path, describeType(v.Type()), n.Value)
		}
	}
}

// Resolve is what n stands for: the anchored node when n is an alias
// (*name), else n itself. Every node a decoder looks at goes through it,
// so an anchor may stand in for any value.
func Resolve(n *yaml.Node) *yaml.Node {
	for n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	return n
}

// Expect reports n, found at path, unless it is of kind (a mapping, a
// list or a single value), and says whether it is.
func (d *Decoder) Expect(path string, n *yaml.Node, kind yaml.Kind) bool {
	if n.Kind == kind {
		return true
	}
	switch kind {
	case yaml.MappingNode:
		d.Add(n, "want a mapping of keys %s, got %s", where(path), Describe(n))
	case yaml.SequenceNode:
		d.Add(n, "%s: want a list (one item per line starting with \"- \", or [a, b]), got %s", path, Describe(n))
	default:
		d.Add(n, "%s: want a single value, got %s", path, Describe(n))
	}
	return false
}

// Fields decodes mapping n into the struct ptr points to, key by key (the
// yaml tags name them): what a NodeDecoder calls for its own fields.
func (d *Decoder) Fields(path string, n *yaml.Node, ptr any) {
	d.fields(path, n, reflect.ValueOf(ptr).Elem())
}

func (d *Decoder) fields(path string, n *yaml.Node, v reflect.Value) {
	if !d.Expect(path, n, yaml.MappingNode) {
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
	Keys(&d.Problems, path, n, names, func(key string, k, val *yaml.Node) {
		// A problem with a whole section or list is reported on its key's
		// line, not on the line its first item happens to be on.
		if d.Lines != nil {
			d.Lines[Join(path, key)] = k.Line
		}
		d.value(Join(path, key), val, v.Field(fields[key]))
	})
}

// ParseDuration reads a duration written as Go writes them: "30s", "5m",
// "1h30m". A bare number is refused: "30" could mean seconds or
// nanoseconds, and guessing wrong makes a timeout useless.
func ParseDuration(n *yaml.Node) (time.Duration, error) {
	if n.Kind != yaml.ScalarNode {
		return 0, fmt.Errorf("want a duration such as 30s or 5m, got %s", Describe(n))
	}
	v, err := time.ParseDuration(n.Value)
	if err != nil {
		return 0, fmt.Errorf("want a duration such as 30s or 5m, got %q", n.Value)
	}
	return v, nil
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

// HasPath reports whether path ("policy.allow[2].host") names a value of
// the tagged Go type t as Decoder walks it: a yaml-tagged field of a
// struct, an item of a list, through pointers. A check made after decoding
// finds its line by the path (Decoder.Lines), falling back to the section
// it is in when the file leaves the key out; a path no file can have (a
// misspelt key) must not fall back, or the problem would be shown on its
// section's line as if it were there.
func HasPath(t reflect.Type, path string) bool {
	if path == "" {
		return true
	}
	for _, seg := range strings.Split(path, ".") {
		name, rest, _ := strings.Cut(seg, "[")
		if name != "" {
			t = deref(t)
			if t.Kind() != reflect.Struct {
				return false
			}
			f, ok := fieldByTag(t, name)
			if !ok {
				return false
			}
			t = f.Type
		}
		for range strings.Count(rest, "[") + min(len(rest), 1) {
			t = deref(t)
			if t.Kind() != reflect.Slice && t.Kind() != reflect.Array {
				return false
			}
			t = t.Elem()
		}
	}
	return true
}

func deref(t reflect.Type) reflect.Type {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	return t
}

// fieldByTag is the exported field of struct type t that the yaml tag
// name names.
func fieldByTag(t reflect.Type, name string) (reflect.StructField, bool) {
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		if tag, _, _ := strings.Cut(f.Tag.Get("yaml"), ","); f.IsExported() && tag == name {
			return f, true
		}
	}
	return reflect.StructField{}, false
}
