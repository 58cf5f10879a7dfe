package secrets

import (
	"bytes"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"os"
	"slices"
	"sync"

	"github.com/slapenir/slapenir/internal/inject"
	"github.com/slapenir/slapenir/internal/redact"
)

// minValueLen is the shortest value accepted: the redactor cannot search for
// anything shorter without mangling ordinary text.
const minValueLen = redact.MinSecretLen

// maxShapeAttempts bounds the search for a format-preserving placeholder
// that collides with nothing; a collision is already astronomically rare.
const maxShapeAttempts = 64

// ErrClosed is returned by a Vault after Close.
var ErrClosed = errors.New("secrets: the vault is closed (its values were wiped)")

// Options are the parts of opening a vault that do not come from the
// configuration file. The zero value is usable.
type Options struct {
	// LookupEnv reads the proxy's environment; nil means os.LookupEnv.
	LookupEnv func(key string) (string, bool)
	// PlaceholderKey makes format-preserving placeholders the same on every
	// start (keep 32 random bytes in the proxy's state directory, see
	// LoadOrCreateKey). Nil means a random key: new placeholders each start,
	// which agents must fetch again from GET /placeholders.
	PlaceholderKey []byte
	// Logf receives the warning printed when memory cannot be locked; nil
	// means log.Printf.
	Logf func(format string, args ...any)
}

// Vault holds the credentials. Its methods are safe for concurrent use.
type Vault struct {
	creds  []Credential
	locked bool

	mu    sync.Mutex
	store store // nil once closed
}

// Open validates cfg, reads every value, makes the placeholders and seals
// the values away. When memory cannot be locked it follows
// cfg.RequireLockedMemory: refuse with an error that says how to fix it, or
// warn through Logf and keep the values in unlocked memory.
func Open(cfg Config, opts Options) (*Vault, error) {
	if err := cfg.check(); err != nil {
		return nil, err
	}
	lookup := opts.LookupEnv
	if lookup == nil {
		lookup = os.LookupEnv
	}
	logf := opts.Logf
	if logf == nil {
		logf = log.Printf
	}
	key := opts.PlaceholderKey
	if len(key) == 0 {
		key = make([]byte, 32)
		if _, err := io.ReadFull(rand.Reader, key); err != nil {
			return nil, fmt.Errorf("secrets: making a placeholder key: %w", err)
		}
	}
	values, sources, err := loadValues(cfg, lookup)
	if err != nil {
		return nil, err
	}
	defer wipeAll(values)
	v := &Vault{}
	for i, cr := range cfg.Credentials {
		c := cr.describe()
		c.Source = sources[i]
		v.creds = append(v.creds, c)
	}
	if err := v.placeholders(cfg, values, key); err != nil {
		return nil, err
	}
	if err := v.seal(cfg, values, logf); err != nil {
		return nil, err
	}
	return v, nil
}

// placeholders fills in every credential's placeholder and refuses two that
// are the same or one that contains a real value.
func (v *Vault) placeholders(cfg Config, values [][]byte, key []byte) error {
	owner := map[string]int{}
	for i, cr := range cfg.Credentials {
		ph := staticPlaceholder(cr)
		for attempt := uint32(0); ph == ""; attempt++ {
			if attempt == maxShapeAttempts {
				return fmt.Errorf("secrets: credential %q: no format-preserving placeholder found that differs from every other placeholder and value; use the default placeholder", cr.Name)
			}
			shaped, err := shapedPlaceholder(key, cr.Name, values[i], attempt)
			if err != nil {
				return fmt.Errorf("secrets: credential %q: %w", cr.Name, err)
			}
			if _, taken := owner[string(shaped)]; !taken && containedValue(shaped, values) < 0 {
				ph = string(shaped)
			}
		}
		if j, taken := owner[ph]; taken {
			return fmt.Errorf("secrets: credentials %q and %q have the same placeholder %q; each needs its own", cfg.Credentials[j].Name, cr.Name, ph)
		}
		if j := containedValue([]byte(ph), values); j >= 0 {
			return fmt.Errorf("secrets: the placeholder of credential %q contains the real value of credential %q; choose another placeholder", cr.Name, cfg.Credentials[j].Name)
		}
		owner[ph] = i
		v.creds[i].Placeholder = ph
	}
	return nil
}

// containedValue returns the index of a value that ph contains, or -1.
func containedValue(ph []byte, values [][]byte) int {
	for j, val := range values {
		if bytes.Contains(ph, val) {
			return j
		}
	}
	return -1
}

// seal moves the values into enclaves, or into the unlocked fallback, and
// wipes them.
func (v *Vault) seal(cfg Config, values [][]byte, logf func(string, ...any)) error {
	lengths := make([]int, len(values))
	for i, val := range values {
		lengths[i] = len(val)
	}
	enclaveMu.Lock()
	defer enclaveMu.Unlock()
	if len(values) == 0 {
		// Nothing to protect: no warning, no refusal, no locked memory.
		v.store = sealEnclaves(nil)
		v.locked = true
		return nil
	}
	ok, why := canLock(lockedPagesNeeded(lengths))
	switch {
	case ok:
		v.store = sealEnclaves(values)
		v.locked = true
		return nil
	case cfg.RequireLockedMemory:
		return fmt.Errorf("secrets: %s, and secrets.require_locked_memory is true; raise the limit (docker run --ulimit memlock=-1, compose \"ulimits: memlock: -1\") or grant CAP_IPC_LOCK, or set secrets.require_locked_memory: false to run with unlocked memory", why)
	}
	st, err := newPlainStore(values)
	if err != nil {
		return err
	}
	v.store = st
	logf("secrets: WARNING: %s; credential values are kept in unlocked memory and may be swapped to disk (raise the limit with docker run --ulimit memlock=-1 or grant CAP_IPC_LOCK; set secrets.require_locked_memory: true to refuse instead)", why)
	return nil
}

// Locked reports whether the values are in locked memory (memguard
// enclaves) rather than in the unlocked fallback.
func (v *Vault) Locked() bool { return v.locked }

// Credentials returns the credentials in configuration order; index i is
// pair i of NewInjector. The slice is a copy.
func (v *Vault) Credentials() []Credential {
	out := make([]Credential, len(v.creds))
	for i, c := range v.creds {
		c.Hosts = slices.Clone(c.Hosts)
		c.Inject = slices.Clone(c.Inject)
		out[i] = c
	}
	return out
}

// Placeholders is the body of GET /placeholders.
func (v *Vault) Placeholders() []Placeholder {
	out := make([]Placeholder, len(v.creds))
	for i, c := range v.creds {
		out[i] = Placeholder{Name: c.Name, Env: c.AgentEnv, Placeholder: c.Placeholder}
	}
	return out
}

// Allow returns the allow function inject's Writer, Replace and Basic take
// for a request to host:port over TLS or not (tls): credential i may be
// injected only when host:port is one of its hosts, and in the clear only
// when it says so (Credential.MayInject). Pass the real destination,
// normalised as hostport.Parse returns it.
func (v *Vault) Allow(host string, port int, tls bool) func(i int) bool {
	ok := make([]bool, len(v.creds))
	for i, c := range v.creds {
		ok[i] = c.MayInject(host, port, tls)
	}
	return func(i int) bool { return i >= 0 && i < len(ok) && ok[i] }
}

// Names turns credential indexes (inject.Used's lists) into names for the
// audit record.
func (v *Vault) Names(idx []int) []string {
	out := make([]string, 0, len(idx))
	for _, i := range idx {
		if i >= 0 && i < len(v.creds) {
			out = append(out, v.creds[i].Name)
		}
	}
	return out
}

// NewInjector compiles every credential into an inject.Injector; pair i is
// Credentials()[i], so Allow and Names apply to its indexes. The injector
// keeps its own heap copy of the values for as long as it lives (see the
// package documentation). Build it once, at start or on reload, not per
// request: opening the values locks memory and serialises with every vault.
func (v *Vault) NewInjector() (*inject.Injector, error) {
	var inj *inject.Injector
	err := v.withValues(func(values [][]byte) error {
		pairs := make([]inject.Pair, len(values))
		for i, val := range values {
			pairs[i] = inject.Pair{Placeholder: []byte(v.creds[i].Placeholder), Value: val}
		}
		var err error
		inj, err = inject.New(pairs)
		return err
	})
	return inj, err
}

// NewRedactor compiles every value into a redact.Redactor. The redactor
// keeps heap copies of the values and their encodings for as long as it
// lives (see the package documentation).
func (v *Vault) NewRedactor(opts redact.Options) (*redact.Redactor, error) {
	var red *redact.Redactor
	err := v.withValues(func(values [][]byte) error {
		var err error
		red, err = redact.New(values, opts)
		return err
	})
	return red, err
}

func (v *Vault) withValues(fn func(values [][]byte) error) error {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.store == nil {
		return ErrClosed
	}
	return v.store.withValues(fn)
}

// Close wipes the values. The credentials (names, placeholders, hosts) stay
// readable; NewInjector and NewRedactor return ErrClosed. Injectors and
// redactors made earlier keep their own copies until they are garbage. With
// memguard, the process-wide session key is purged when the last open vault
// closes. Close is idempotent.
func (v *Vault) Close() error {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.store != nil {
		v.store.close()
		v.store = nil
	}
	return nil
}

// Format prints a summary whatever the verb (%v, %+v, %#v, %s, %q…), so a
// vault passed to a logger by mistake shows no value and no memory layout.
func (v *Vault) Format(f fmt.State, verb rune) {
	mem := "unlocked memory"
	if v.locked {
		mem = "locked memory"
	}
	fmt.Fprintf(f, "secrets.Vault(%d credentials, %s)", len(v.creds), mem)
}

// String is Format's %v, for callers that use fmt.Stringer directly.
func (v *Vault) String() string { return fmt.Sprint(v) }

// MarshalJSON lists the credentials without values, so a vault marshalled
// by mistake says what it holds and nothing secret.
func (v *Vault) MarshalJSON() ([]byte, error) {
	return json.Marshal(v.Placeholders())
}

// MarshalYAML is MarshalJSON for YAML encoders.
func (v *Vault) MarshalYAML() (any, error) { return v.Placeholders(), nil }
