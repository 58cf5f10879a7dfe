package relay_test

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
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

// TestHelperLargePromptWithExpectContinue sends a 2 MB chat body the way
// curl does (Expect: 100-continue), as a long Aider chat history would be.
func TestHelperLargePromptWithExpectContinue(t *testing.T) {
	needTool(t, "curl")
	ctx := testContext(t)
	c := startChain(t, fake.Options{})
	body := filepath.Join(t.TempDir(), "chat.json")
	prompt := strings.Repeat("func main() {}\n", 2<<20/15)
	doc, _ := json.Marshal(map[string]any{"model": fake.DefaultModel, "stream": false, "messages": []map[string]string{{"role": "user", "content": prompt}}})
	if err := os.WriteFile(body, doc, 0o600); err != nil {
		t.Fatal(err)
	}
	out := run(t, ctx, toolEnv(""), "curl", "-sS", "--fail", "-H", "Expect: 100-continue", "--data-binary", "@"+body, c.relay.helperURL.String()+"/api/chat")
	if !strings.Contains(out, `"done":true`) {
		t.Fatalf("2 MB chat through the helper: %.300s", out)
	}
	// The fake keeps the first MB of a body; it must be the document's.
	reqs := c.fake.Requests()
	if len(reqs) != 1 || len(reqs[0].Body) == 0 || !bytes.HasPrefix(doc, reqs[0].Body) {
		t.Errorf("Ollama got %d requests; want one carrying the document", len(reqs))
	}
}
