// Package fake is a stand-in Ollama server for tests, benchmarks and
// "slapenir up": it speaks Ollama's wire format (the JSON field names and types
// of github.com/ollama/ollama/api, NDJSON streams on /api/*, SSE on /v1/*) and
// reproduces the behaviours a relay must survive: no response headers before the
// first token, one flush per token, an {"error": …} line after a 200, Ollama's
// 404 for an unknown model, and the 403s of its Host rule (when listening on
// loopback) and its Origin rule.
//
// It owns only the imitation of the server. It must not run a model, touch the
// network beyond the listener it is given, or depend on Ollama's own packages,
// so that the product binary can embed it.
package fake
