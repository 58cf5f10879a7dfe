package relay_test

import (
	"strings"
	"testing"

	"github.com/slapenir/slapenir/internal/ollama/fake"
)

// TestSeedConnectivityCurls runs the seed's three "Testing connectivity"
// commands with the real curl: Ollama directly, the proxy with X-Target-URL,
// and the helper.
func TestSeedConnectivityCurls(t *testing.T) {
	needTool(t, "curl")
	ctx := testContext(t)
	c := startChain(t, fake.Options{})
	env := toolEnv("")
	for name, args := range map[string][]string{
		"direct":       {c.fake.URL() + "/api/tags"},
		"proxy":        {"-H", "X-Target-URL: " + c.fake.URL(), c.proxy.url + "/api/tags"},
		"proxy helper": {c.relay.helperURL.String() + "/api/tags"},
	} {
		out := run(t, ctx, env, "curl", append([]string{"-sS", "--fail"}, args...)...)
		if !strings.Contains(out, `"name":"`+fake.DefaultModel+`"`) {
			t.Errorf("%s: curl %s = %s, want the model list", name, strings.Join(args, " "), out)
		}
	}
}
