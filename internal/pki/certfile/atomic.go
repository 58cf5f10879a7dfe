package certfile

import (
	"fmt"
	"os"
	"path/filepath"
)

// WriteAtomic replaces path with data and mode perm. The data goes to a
// temporary file in the same directory first, is synced, and is renamed over
// path, so a concurrent reader (the proxy's reloader, the relay) sees either the
// old content or the new one, never a mix.
func WriteAtomic(path string, data []byte, perm os.FileMode) error {
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("certfile: cannot create a temporary file in %s: %w (check that the directory exists and is writable)", dir, err)
	}
	tmpName := tmp.Name()
	defer os.Remove(tmpName) // no-op once renamed
	if err := tmp.Chmod(perm); err != nil {
		tmp.Close()
		return fmt.Errorf("certfile: cannot set mode %o on %s: %w", perm, tmpName, err)
	}
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return fmt.Errorf("certfile: cannot write %s: %w", tmpName, err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("certfile: cannot sync %s: %w", tmpName, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("certfile: cannot close %s: %w", tmpName, err)
	}
	if err := os.Rename(tmpName, path); err != nil {
		return fmt.Errorf("certfile: cannot rename %s to %s: %w", tmpName, path, err)
	}
	return nil
}
