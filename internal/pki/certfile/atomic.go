package certfile

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"syscall"
)

// WriteAtomic replaces path with data and mode perm. The data goes to a
// temporary file in the same directory first, is synced, and is renamed over
// path, so a concurrent reader (the proxy's reloader, the relay) sees either the
// old content or the new one, never a mix.
func WriteAtomic(path string, data []byte, perm os.FileMode) error {
	return WriteAtomicFrom(path, bytes.NewReader(data), perm, AtomicOptions{})
}

// AtomicOptions are what WriteAtomicFrom does beyond WriteAtomic.
type AtomicOptions struct {
	// KeepOwner gives the new file the owner and group of the file it
	// replaces, when that is someone else (root rewriting a user's file).
	KeepOwner bool
	// SyncDir syncs the directory after the rename, so that the rename
	// itself survives a crash.
	SyncDir bool
}

// WriteAtomicFrom is WriteAtomic for the bytes of src (a binary copied in
// place), with the options o. The one place this package, the aider
// settings and slapenir up replace a file.
func WriteAtomicFrom(path string, src io.Reader, perm os.FileMode, o AtomicOptions) error {
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("certfile: cannot create a temporary file in %s: %w (check that the directory exists and is writable)", dir, err)
	}
	tmpName := tmp.Name()
	defer os.Remove(tmpName) // no-op once renamed
	fail := func(what string, err error) error {
		tmp.Close()
		return fmt.Errorf("certfile: cannot %s %s: %w", what, tmpName, err)
	}
	if err := tmp.Chmod(perm); err != nil {
		return fail(fmt.Sprintf("set mode %o on", perm), err)
	}
	if _, err := io.Copy(tmp, src); err != nil {
		return fail("write", err)
	}
	if o.KeepOwner {
		if fi, err := os.Stat(path); err == nil {
			if st, ok := fi.Sys().(*syscall.Stat_t); ok && int(st.Uid) != os.Geteuid() {
				if err := tmp.Chown(int(st.Uid), int(st.Gid)); err != nil {
					return fail("give the owner of "+path+" to", err)
				}
			}
		}
	}
	if err := tmp.Sync(); err != nil {
		return fail("sync", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("certfile: cannot close %s: %w", tmpName, err)
	}
	if err := os.Rename(tmpName, path); err != nil {
		return fmt.Errorf("certfile: cannot rename %s to %s: %w", tmpName, path, err)
	}
	if o.SyncDir {
		if d, err := os.Open(dir); err == nil {
			_ = d.Sync()
			_ = d.Close()
		}
	}
	return nil
}
