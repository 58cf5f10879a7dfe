package secrets

import (
	"bytes"
	"strconv"
)

// DotenvError is a .env syntax error. It says where (file, line, and the
// variable once its name is known) and what is wrong, never what the value
// is: a message is one of a fixed set of sentences.
type DotenvError struct {
	Path string // the file, "" when parsing bytes
	Line int    // 1-based
	Key  string // the variable, only once "KEY=" has been read
	Msg  string
}

func (e *DotenvError) Error() string {
	s := "secrets: .env"
	if e.Path != "" {
		s += " file " + strconv.Quote(e.Path)
	}
	s += " line " + strconv.Itoa(e.Line)
	if e.Key != "" {
		s += " (" + e.Key + ")"
	}
	return s + ": " + e.Msg
}

// The only messages a DotenvError carries. None of them quotes the input, so
// a value cannot leak through a syntax error.
const (
	msgNoKey       = `expected KEY=VALUE, with KEY made of letters, digits and "_" not starting with a digit`
	msgNoEquals    = `expected "=" after the variable name`
	msgOpenSingle  = "the single-quoted value starting here is never closed"
	msgOpenDouble  = "the double-quoted value starting here is never closed"
	msgBadEscape   = `unknown escape sequence in a double-quoted value (known: \\ \" \' \$ \n \r \t)`
	msgAfterQuote  = `unexpected text after the closing quote (only a "# comment" may follow)`
	msgNUL         = "contains a NUL byte"
	msgExportAlone = `"export" needs KEY=VALUE after it`
)

// dotenvMessages lists every message, for tests that check no other text can
// appear.
var dotenvMessages = []string{msgNoKey, msgNoEquals, msgOpenSingle, msgOpenDouble, msgBadEscape, msgAfterQuote, msgNUL, msgExportAlone}

// dotenvEntry is one assignment. value is a fresh slice the caller wipes.
type dotenvEntry struct {
	key   string
	value []byte
	line  int
}

// parseDotenv reads the .env syntax Docker Compose and shells agree on:
//
//	# comment                 blank lines and comments are skipped
//	KEY=value                 unquoted: trimmed, ends at " #" (a comment)
//	export KEY=value          "export " is ignored
//	KEY = value               spaces around "=" are allowed
//	KEY='literal $x \n'       single quotes: nothing is special, may span lines
//	KEY="a\nb \"q\" \\ \$"    double quotes: \\ \" \' \$ \n \r \t, may span lines
//	KEY=                      empty value
//
// There is no ${VAR} expansion: "$" is an ordinary character, so a value is
// never silently changed. A later assignment of the same key wins, as in a
// shell. CRLF line ends are accepted (and become LF inside quoted values).
func parseDotenv(data []byte) ([]dotenvEntry, error) {
	p := dotenvParser{data: bytes.TrimPrefix(data, []byte("\xef\xbb\xbf")), line: 1}
	var out []dotenvEntry
	for {
		p.skipBlank()
		if p.eof() {
			return out, nil
		}
		switch p.peek() {
		case '\n':
			p.next()
			continue
		case '#':
			p.skipToEOL()
			continue
		}
		e, err := p.assignment()
		if err != nil {
			for i := range out {
				clear(out[i].value)
			}
			return nil, err
		}
		out = append(out, e)
	}
}

type dotenvParser struct {
	data []byte
	pos  int
	line int
}

func (p *dotenvParser) eof() bool  { return p.pos >= len(p.data) }
func (p *dotenvParser) peek() byte { return p.data[p.pos] }

func (p *dotenvParser) next() byte {
	c := p.data[p.pos]
	p.pos++
	if c == '\n' {
		p.line++
	}
	return c
}

// skipBlank skips spaces, tabs and carriage returns (a CR before LF is part
// of the line end).
func (p *dotenvParser) skipBlank() {
	for !p.eof() && (p.peek() == ' ' || p.peek() == '\t' || p.peek() == '\r') {
		p.pos++
	}
}

func (p *dotenvParser) skipToEOL() {
	for !p.eof() && p.peek() != '\n' {
		p.pos++
	}
}

func (p *dotenvParser) fail(key, msg string) error {
	return &DotenvError{Line: p.line, Key: key, Msg: msg}
}

func isKeyStart(c byte) bool { return c == '_' || c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' }
func isKeyByte(c byte) bool  { return isKeyStart(c) || c >= '0' && c <= '9' }

func (p *dotenvParser) key() string {
	start := p.pos
	if p.eof() || !isKeyStart(p.peek()) {
		return ""
	}
	for !p.eof() && isKeyByte(p.peek()) {
		p.pos++
	}
	return string(p.data[start:p.pos])
}

func (p *dotenvParser) assignment() (dotenvEntry, error) {
	line := p.line
	if bytes.HasPrefix(p.data[p.pos:], []byte("export")) {
		rest := p.data[p.pos+len("export"):]
		if len(rest) > 0 && (rest[0] == ' ' || rest[0] == '\t') {
			p.pos += len("export")
			p.skipBlank()
			if p.eof() || p.peek() == '\n' || p.peek() == '#' {
				return dotenvEntry{}, p.fail("", msgExportAlone)
			}
		}
	}
	key := p.key()
	if key == "" || !p.eof() && !bytes.ContainsRune([]byte(" \t\r=\n"), rune(p.peek())) {
		return dotenvEntry{}, p.fail("", msgNoKey)
	}
	p.skipBlank()
	if p.eof() || p.peek() != '=' {
		// The "key" may be a pasted token on a line of its own, so it is
		// not named.
		return dotenvEntry{}, p.fail("", msgNoEquals)
	}
	p.pos++
	p.skipBlank()
	var value []byte
	var err error
	switch {
	case p.eof():
	case p.peek() == '\'':
		value, err = p.singleQuoted(key)
	case p.peek() == '"':
		value, err = p.doubleQuoted(key)
	default:
		value = p.unquoted()
	}
	if err == nil && bytes.IndexByte(value, 0) >= 0 {
		err = &DotenvError{Line: line, Key: key, Msg: msgNUL}
	}
	if err != nil {
		clear(value)
		return dotenvEntry{}, err
	}
	return dotenvEntry{key: key, value: value, line: line}, nil
}

func (p *dotenvParser) unquoted() []byte {
	start := p.pos
	end := p.pos
	for !p.eof() && p.peek() != '\n' {
		c := p.data[p.pos]
		if c == '#' && p.pos > start && (p.data[p.pos-1] == ' ' || p.data[p.pos-1] == '\t') {
			p.skipToEOL()
			break
		}
		p.pos++
		if c != ' ' && c != '\t' && c != '\r' {
			end = p.pos
		}
	}
	return bytes.Clone(p.data[start:end])
}

func (p *dotenvParser) singleQuoted(key string) ([]byte, error) {
	return p.quoted(key, '\'', false, msgOpenSingle)
}

func (p *dotenvParser) doubleQuoted(key string) ([]byte, error) {
	return p.quoted(key, '"', true, msgOpenDouble)
}

// quoted reads a value from its opening quote to the closing one; a CRLF
// inside is one line end, and with escapes a backslash escapes (unescape).
// A value left open is wiped before the error names where it opened.
func (p *dotenvParser) quoted(key string, quote byte, escapes bool, msgOpen string) ([]byte, error) {
	open := p.line
	p.pos++
	var v []byte
	for !p.eof() {
		c := p.next()
		switch {
		case c == quote:
			return v, p.afterQuote(key, v)
		case c == '\r' && !p.eof() && p.peek() == '\n':
			// CRLF inside quotes is one line end.
		case c == '\\' && escapes:
			if p.eof() {
				continue
			}
			e, ok := unescape(p.peek())
			if !ok {
				clear(v)
				return nil, p.fail(key, msgBadEscape)
			}
			p.next()
			v = append(v, e)
		default:
			v = append(v, c)
		}
	}
	clear(v)
	return nil, &DotenvError{Line: open, Key: key, Msg: msgOpen}
}

func unescape(c byte) (byte, bool) {
	switch c {
	case '\\', '"', '\'', '$':
		return c, true
	case 'n':
		return '\n', true
	case 'r':
		return '\r', true
	case 't':
		return '\t', true
	}
	return 0, false
}

// afterQuote accepts only blanks and a comment after a closing quote.
func (p *dotenvParser) afterQuote(key string, v []byte) error {
	p.skipBlank()
	switch {
	case p.eof() || p.peek() == '\n':
		return nil
	case p.peek() == '#':
		p.skipToEOL()
		return nil
	}
	clear(v)
	return p.fail(key, msgAfterQuote)
}

// DotenvEnviron parses a .env file (the syntax of parseDotenv) into
// KEY=value entries for a child's environment, later keys winning. It is for
// `slapenir up`, which hands the root .env to the proxy as compose's
// env_file does: the values become strings there, as any environment
// variable is; the vault reads them from that environment like the rest.
func DotenvEnviron(data []byte) ([]string, error) {
	entries, err := parseDotenv(data)
	if err != nil {
		return nil, err
	}
	out := make([]string, 0, len(entries))
	for _, e := range entries {
		out = append(out, e.key+"="+string(e.value))
		clear(e.value)
	}
	return out, nil
}
