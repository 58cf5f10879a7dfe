package secrets

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
)

// maxValueBytes bounds a credential file: a token or key is a few KiB at
// most, and a misconfigured path (a log, a disk image) must not be read
// whole into memory.
const maxValueBytes = 64 << 10

// loadValues reads every credential's value, in order, with a description
// of where it came from. On error nothing read is left unwiped.
func loadValues(cfg Config, lookupEnv func(string) (string, bool)) (values [][]byte, sources []string, err error) {
	defer func() {
		if err != nil {
			wipeAll(values)
			values = nil
		}
	}()
	var dotenv []dotenvEntry
	if cfg.Dotenv != "" {
		if dotenv, err = readDotenv(cfg.Dotenv); err != nil {
			return nil, nil, err
		}
		defer func() {
			for i := range dotenv {
				clear(dotenv[i].value)
			}
		}()
	}
	for _, cr := range cfg.Credentials {
		var v []byte
		var src string
		if cr.File != "" {
			v, err = readValueFile(cr.File)
			src = "file " + strconv.Quote(cr.File)
		} else {
			v, src, err = lookupValue(cr.Env, lookupEnv, dotenv, cfg.Dotenv)
		}
		if err != nil {
			return values, nil, fmt.Errorf("secrets: credential %q: %w", cr.Name, err)
		}
		values = append(values, v)
		sources = append(sources, src)
		if len(v) == 0 {
			return values, nil, fmt.Errorf("secrets: credential %q: the value from %s is empty; set it or remove the credential", cr.Name, src)
		}
		if len(v) < minValueLen {
			return values, nil, fmt.Errorf("secrets: credential %q: the value from %s is shorter than %d bytes, too short to be told apart from ordinary text when redacting", cr.Name, src, minValueLen)
		}
	}
	return values, sources, nil
}

func wipeAll(values [][]byte) {
	for _, v := range values {
		clear(v)
	}
}

// lookupValue finds env in the proxy's environment first, then in the
// .env file: a variable set for the process overrides the file, as with
// Docker Compose.
func lookupValue(env string, lookupEnv func(string) (string, bool), dotenv []dotenvEntry, dotenvPath string) ([]byte, string, error) {
	if s, ok := lookupEnv(env); ok {
		return []byte(s), "environment variable " + env, nil
	}
	// The last assignment wins, as when a shell sources the file.
	for i := len(dotenv) - 1; i >= 0; i-- {
		if e := dotenv[i]; e.key == env {
			return bytes.Clone(e.value), fmt.Sprintf(".env file %q line %d", dotenvPath, e.line), nil
		}
	}
	if dotenvPath != "" {
		return nil, "", fmt.Errorf("%s is set neither in the proxy's environment nor in .env file %q", env, dotenvPath)
	}
	return nil, "", fmt.Errorf("%s is not set in the proxy's environment (set it, or point secrets.dotenv at a .env file that has it)", env)
}

func readDotenv(path string) ([]dotenvEntry, error) {
	data, err := readBounded(path, 1<<20)
	if err != nil {
		return nil, fmt.Errorf("secrets: dotenv: %w", err)
	}
	defer clear(data)
	entries, err := parseDotenv(data)
	if err != nil {
		var de *DotenvError
		if errors.As(err, &de) {
			de.Path = path
		}
		return nil, err
	}
	return entries, nil
}

// readValueFile reads a secret file such as /run/secrets/github_token. The
// trailing line break that editors and "echo" add is not part of the value,
// nor is trailing white space.
func readValueFile(path string) ([]byte, error) {
	data, err := readBounded(path, maxValueBytes)
	if err != nil {
		return nil, err
	}
	v := bytes.Clone(bytes.TrimRight(data, " \t\r\n"))
	clear(data)
	return v, nil
}

// readBounded reads a whole file of at most limit bytes into a buffer sized
// from the file's length, so that no grown-and-abandoned copy of a secret is
// left unwiped on the heap.
func readBounded(path string, limit int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("cannot read %q: %w", path, errors.Unwrap(err))
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("cannot read %q: %w", path, errors.Unwrap(err))
	}
	if info.Size() > limit {
		return nil, fmt.Errorf("%q is larger than %d bytes; is it really a secret file?", path, limit)
	}
	// One byte more than the size tells a file that grew while being read.
	buf := make([]byte, info.Size()+1)
	n, err := io.ReadFull(f, buf)
	switch {
	case err == nil:
		clear(buf)
		return nil, fmt.Errorf("%q changed size while being read; try again", path)
	case err != io.ErrUnexpectedEOF && err != io.EOF:
		clear(buf)
		return nil, fmt.Errorf("cannot read %q: %w", path, err)
	}
	return buf[:n], nil
}
