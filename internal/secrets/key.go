package secrets

import (
	"fmt"

	"github.com/slapenir/slapenir/internal/keyfile"
)

// placeholderKeyLen is the size of a placeholder key: an HMAC-SHA256 key.
const placeholderKeyLen = 32

// LoadOrCreateKey reads the placeholder key at path (for
// Options.PlaceholderKey), creating it with fresh random bytes and mode
// 0600 on first use, so that format-preserving placeholders survive
// restarts. The key is not a credential: it only derives placeholders, and
// a new one changes them (agents then fetch GET /placeholders again).
func LoadOrCreateKey(path string) ([]byte, error) {
	key, err := keyfile.LoadOrCreate(path, placeholderKeyLen, "placeholder key", "placeholders will change")
	if err != nil {
		return nil, fmt.Errorf("secrets: %w", err)
	}
	return key, nil
}
