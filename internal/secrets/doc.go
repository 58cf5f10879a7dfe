// Package secrets is SLAPENIR's credential vault: it loads the real
// credentials the proxy injects (from the proxy's environment, from files
// such as Docker secrets under /run/secrets, or from a .env file), keeps
// them encrypted in memguard enclaves while at rest, gives each one the
// placeholder the agent uses instead, and says which destination hosts each
// credential may be sent to.
//
// The proxy uses it in this order:
//
//	v, err := secrets.Open(cfg.Secrets, secrets.Options{PlaceholderKey: key})
//	inj, err := v.NewInjector()              // pair i is v.Credentials()[i]
//	red, err := v.NewRedactor(redact.Options{})
//	...
//	w := inj.NewWriter(upstream, v.Allow(host, port, tls))  // per request
//	audit(v.Names(w.Used().Injected))                  // names, never values
//	...
//	GET /placeholders → json.Marshal(v.Placeholders())
//	...
//	v.Close()                                          // on shutdown
//
// Where a real value exists in memory, and why:
//
//   - In the vault: one memguard enclave per credential (encrypted, the key
//     in locked guarded pages), or, when memory cannot be locked and
//     secrets.require_locked_memory is false, one mmap'd region outside the
//     Go heap, excluded from core dumps and unreadable (PROT_NONE) except
//     while NewInjector or NewRedactor runs.
//   - While NewInjector/NewRedactor runs: every value is opened into a
//     locked buffer in turn and copied into one locked, non-heap region that
//     the inject or redact package reads and that is wiped right after.
//   - In the compiled inject.Injector and redact.Redactor, for their lifetime:
//     both packages copy what they are given into ordinary heap memory (the
//     redactor also keeps every encoded form). This is the price of
//     replacing bytes at line rate; it is the largest exposure and is
//     documented in docs/secrets.md.
//   - While loading: a value read from the environment stays in the process
//     environment (Go strings cannot be wiped, and the kernel keeps the
//     initial environment); a value read from a file or .env file is wiped
//     from the read buffer as soon as it is sealed.
//
// It must not log or return a real value: no type here holds a value in a
// field that fmt, encoding/json or YAML would print, errors name credentials
// and .env line numbers only, and the vault prints as a summary. It must not
// decide policy (which hosts are allowed at all) or touch the network; and it
// does not read the proxy's YAML itself: internal/config embeds Config.
package secrets
