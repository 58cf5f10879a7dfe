package secrets

import (
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
)

// placeholderKeyLen is the size of a placeholder key: an HMAC-SHA256 key.
const placeholderKeyLen = 32

// LoadOrCreateKey reads the placeholder key at path (for
// Options.PlaceholderKey), creating it with fresh random bytes and mode
// 0600 on first use, so that format-preserving placeholders survive
// restarts. The key is not a credential: it only derives placeholders, and
// a new one changes them (agents then fetch GET /placeholders again).
func LoadOrCreateKey(path string) ([]byte, error) {
	key, err := os.ReadFile(path)
	switch {
	case err == nil && len(key) == placeholderKeyLen:
		return key, nil
	case err == nil:
		return nil, fmt.Errorf("secrets: placeholder key %q is %d bytes, want %d; delete it to have a new one made (placeholders will change)", path, len(key), placeholderKeyLen)
	case !errors.Is(err, fs.ErrNotExist):
		return nil, fmt.Errorf("secrets: reading placeholder key: %w", err)
	}
	key = make([]byte, placeholderKeyLen)
	if _, err := io.ReadFull(rand.Reader, key); err != nil {
		return nil, fmt.Errorf("secrets: making a placeholder key: %w", err)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, fs.ErrExist) {
		// Another process made it first: use theirs.
		return LoadOrCreateKey(path)
	}
	if err != nil {
		return nil, fmt.Errorf("secrets: creating placeholder key: %w", err)
	}
	_, err = f.Write(key)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(path)
		return nil, fmt.Errorf("secrets: writing placeholder key %q: %w", path, err)
	}
	return key, nil
}
