// Package ollama groups what SLAPENIR knows about Ollama, the local LLM server
// the seed's "Local LLM Support" talks to: a faithful fake of its HTTP API
// (package fake) and the settings and launch logic of the aider-ollama wrapper
// (package aider). This package itself holds only what those share: the
// header by which the fake says it is one.
//
// It must not relay traffic: the relay and the proxy own that path.
package ollama

// FakeHeader is set on every answer of the fake Ollama, so ollama-verify
// can say that the model it found gives canned answers.
const FakeHeader = "X-Slapenir-Fake-Ollama"
