package reload

import (
	"os"
	"syscall"
	"time"
)

// stamp identifies one version of a file: an atomic rename changes the inode,
// an in-place rewrite changes size or mtime.
type stamp struct {
	ino   uint64
	size  int64
	mtime time.Time
}

func stampOf(path string) (stamp, error) {
	st, err := os.Stat(path)
	if err != nil {
		return stamp{}, err
	}
	s := stamp{size: st.Size(), mtime: st.ModTime()}
	if sys, ok := st.Sys().(*syscall.Stat_t); ok {
		s.ino = sys.Ino
	}
	return s, nil
}

// stampsOf stamps several files; a missing file yields the zero stamp, which
// differs from any real one.
func stampsOf(paths ...string) []stamp {
	out := make([]stamp, len(paths))
	for i, p := range paths {
		out[i], _ = stampOf(p)
	}
	return out
}

func sameStamps(a, b []stamp) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i].ino != b[i].ino || a[i].size != b[i].size || !a[i].mtime.Equal(b[i].mtime) {
			return false
		}
	}
	return true
}
