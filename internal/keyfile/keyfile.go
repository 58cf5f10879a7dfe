package keyfile

import (
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
)

// LoadOrCreate reads the n-byte key at path, creating it with random bytes
// and mode 0600 on first use. what names the key in errors ("placeholder
// key"), and consequence says what deleting it would change.
func LoadOrCreate(path string, n int, what, consequence string) ([]byte, error) {
	key, err := os.ReadFile(path)
	switch {
	case err == nil && len(key) == n:
		return key, nil
	case err == nil:
		return nil, fmt.Errorf("%s %q is %d bytes, want %d; delete it to have a new one made (%s)", what, path, len(key), n, consequence)
	case !errors.Is(err, fs.ErrNotExist):
		return nil, fmt.Errorf("reading %s: %w", what, err)
	}
	key = make([]byte, n)
	if _, err := io.ReadFull(rand.Reader, key); err != nil {
		return nil, fmt.Errorf("making a %s: %w", what, err)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, fs.ErrExist) {
		// Another process made it first: use theirs.
		return LoadOrCreate(path, n, what, consequence)
	}
	if err != nil {
		return nil, fmt.Errorf("creating %s: %w", what, err)
	}
	_, err = f.Write(key)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(path)
		return nil, fmt.Errorf("writing %s %q: %w", what, path, err)
	}
	return key, nil
}

// Load reads the n-byte key at path, which must exist.
func Load(path string, n int, what string) ([]byte, error) {
	key, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", what, err)
	}
	if len(key) != n {
		return nil, fmt.Errorf("%s %q is %d bytes, want %d", what, path, len(key), n)
	}
	return key, nil
}
