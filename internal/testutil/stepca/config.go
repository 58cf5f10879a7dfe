package stepca

import (
	"sync"

	"github.com/slapenir/slapenir/internal/pki/cainit"
)

// Provisioner names in the generated CA.
const (
	AgentProvisioner = "agent-provisioner"
	OtherProvisioner = "other-provisioner"
)

// writeConfig creates the CA in dir with the product's own cainit, with both
// provisioners.
func writeConfig(dir, addr string, opts Options, password []byte) (rootPath, configPath string, err error) {
	var keys []cainit.Key
	for _, name := range []string{AgentProvisioner, OtherProvisioner} {
		k, err := provisionerKey(name, password)
		if err != nil {
			return "", "", err
		}
		keys = append(keys, k)
	}
	configPath, rootPath, err = cainit.Init(cainit.Options{
		Dir: dir, Name: "SLAPENIR Test", Address: addr, DNSNames: []string{"127.0.0.1", "localhost"},
		Provisioners: keys, DefaultDuration: opts.DefaultDuration, MinDuration: opts.MinDuration, MaxDuration: opts.MaxDuration,
	})
	return rootPath, configPath, err
}

var (
	provKeysMu sync.Mutex
	provKeys   = map[string]cainit.Key{}
)

// provisionerKey generates a provisioner key once per test binary and
// reuses it for every CA: encrypting it (PBKDF2 with step's iteration count)
// takes seconds under -race, and distinct CAs never share a database, so
// sharing the key costs no isolation.
func provisionerKey(name string, password []byte) (cainit.Key, error) {
	provKeysMu.Lock()
	defer provKeysMu.Unlock()
	if k, ok := provKeys[name]; ok {
		return k, nil
	}
	k, err := cainit.NewKey(name, password)
	if err != nil {
		return cainit.Key{}, err
	}
	provKeys[name] = k
	return k, nil
}
