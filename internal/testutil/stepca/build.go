package stepca

import (
	"testing"

	"github.com/slapenir/slapenir/internal/testutil/gobin"
)

// Version is the step-ca release the tests run; it builds with Go 1.26.
const Version = "v0.30.2"

// Binary returns the path of a step-ca binary, built from the Go module
// proxy on first use and cached (SLAPENIR_STEPCA_BIN names one to use
// instead).
func Binary(t testing.TB) string {
	t.Helper()
	return gobin.Binary(t, gobin.Tool{Name: "step-ca", Package: "github.com/smallstep/certificates/cmd/step-ca", Version: Version, Env: "SLAPENIR_STEPCA_BIN"})
}
