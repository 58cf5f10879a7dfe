package auditweb

import (
	"os"
	"syscall"
)

// inode tells a rotated file from the one before it.
func inode(fi os.FileInfo) uint64 {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return st.Ino
	}
	return 0
}
