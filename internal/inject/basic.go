package inject

import (
	"encoding/base64"
	"strings"
)

// Basic replaces placeholders inside an "Authorization: Basic" credential,
// where base64 hides them from a byte search: git over HTTPS sends
// "Basic base64(user:DUMMY_GITHUB)". It returns the header value to send
// and what was used. A value that is not Basic, or whose credential is not
// valid base64, comes back unchanged with nothing used.
func (in *Injector) Basic(value string, allow func(i int) bool) (string, Used) {
	scheme, cred, ok := strings.Cut(value, " ")
	if !ok || !strings.EqualFold(scheme, "Basic") {
		return value, Used{}
	}
	cred = strings.TrimSpace(cred)
	enc := base64.StdEncoding
	if !strings.HasSuffix(cred, "=") && len(cred)%4 != 0 {
		enc = base64.RawStdEncoding
	}
	plain, err := enc.DecodeString(cred)
	if err != nil {
		return value, Used{}
	}
	replaced, used := in.Replace(plain, allow)
	if len(used.Injected) == 0 {
		return value, used
	}
	return scheme + " " + enc.EncodeToString(replaced), used
}
