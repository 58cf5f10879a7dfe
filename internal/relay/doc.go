// Package relay is the agent side of the path to the SLAPENIR proxy: two
// loopback listeners that let tools which know nothing about mTLS reach the
// proxy with the agent's certificate.
//
//   - The forward proxy (127.0.0.1:3128, for HTTP_PROXY/HTTPS_PROXY) takes
//     absolute-form requests, which go on to the proxy as absolute-form over
//     reused connections, and CONNECT, which becomes a CONNECT to the proxy
//     followed by a byte relay.
//   - The Ollama helper (127.0.0.1:8765) takes Ollama API requests in origin
//     form and sends them to the proxy with X-Target-URL naming Ollama.
//
// Both stream every chunk as soon as it arrives, never add an Origin header,
// and answer failures with 502 and a JSON {"error": …} (Ollama's own shape)
// that names the hop that failed: relay → proxy, or proxy → Ollama.
//
// The package owns the relaying and the certificate material it presents
// (re-read when renewed, through package reload). It must not decide policy,
// inject credentials, redact, or audit: the proxy does all of that, and the
// relay runs inside the agent, where nothing can be trusted to.
package relay
