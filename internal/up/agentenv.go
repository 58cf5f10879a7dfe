package up

import (
	"fmt"
	"path/filepath"
	"strings"

	"github.com/slapenir/slapenir/internal/config"
	"github.com/slapenir/slapenir/internal/secrets"
)

// passedToAgent are the only variables of the user's environment the agent
// environment inherits, as a container would: locale, time zone, terminal.
// Everything else, API keys in the user's shell above all, stays on this
// side; the agent gets placeholders instead.
var passedToAgent = []string{"LANG", "LC_ALL", "LC_CTYPE", "TZ", "TERM"}

// defaultPath is the services' PATH after up's bin directory.
const defaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// agentBaseEnv picks passedToAgent from env.
func agentBaseEnv(env []string) []string {
	var out []string
	for _, k := range passedToAgent {
		if v := envValue(env, k); v != "" {
			out = append(out, k+"="+v)
		}
	}
	return out
}

// placeholderEnv is what the agent exports for each credential of cfg:
// AGENT_ENV=placeholder, the same placeholders the proxy will announce at
// /placeholders (both derive them from the key in the state directory).
// The vault is open only while they are read.
func placeholderEnv(cfg *config.Config, env []string) ([]string, []string, error) {
	if len(cfg.Secrets.Credentials) == 0 {
		return nil, nil, nil
	}
	key, err := secrets.LoadOrCreateKey(filepath.Join(cfg.State(), "placeholder.key"))
	if err != nil {
		return nil, nil, err
	}
	lookup := func(k string) (string, bool) {
		v := envValue(env, k)
		return v, v != ""
	}
	// The proxy warns about unlockable memory when it opens the vault.
	quiet := func(string, ...any) {}
	vault, err := secrets.Open(cfg.Secrets, secrets.Options{PlaceholderKey: key, LookupEnv: lookup, Logf: quiet})
	if err != nil {
		return nil, nil, fmt.Errorf("up: the proxy's credentials: %w", err)
	}
	defer vault.Close()
	var out, names []string
	for _, p := range vault.Placeholders() {
		if p.Env != "" {
			out = append(out, p.Env+"="+p.Placeholder)
			names = append(names, "$"+p.Env)
		}
	}
	return out, names, nil
}

func joinOrNone(items []string) string {
	if len(items) == 0 {
		return "none"
	}
	return strings.Join(items, ", ")
}
