// Package version reports what build of slapenir is running. It owns nothing
// else; the proxy's /health and every subcommand's banner read it from here.
package version

import (
	"fmt"
	"runtime"
	"runtime/debug"
)

// Version is set at link time (-ldflags "-X …/version.Version=v1.2.3"); a
// plain go build reports the module version or "dev".
var Version = ""

// Short is the version alone, e.g. "v0.1.0" or "dev".
func Short() string {
	if Version != "" {
		return Version
	}
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		return bi.Main.Version
	}
	return "dev"
}

// Long adds the Go version, platform and VCS revision when the build knows it.
func Long() string {
	s := fmt.Sprintf("slapenir %s (%s %s/%s)", Short(), runtime.Version(), runtime.GOOS, runtime.GOARCH)
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, kv := range bi.Settings {
			if kv.Key == "vcs.revision" {
				s += " rev " + kv.Value
			}
		}
	}
	return s
}
