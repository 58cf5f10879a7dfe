// Package ollama groups what SLAPENIR knows about Ollama, the local LLM server
// the seed's "Local LLM Support" talks to: a faithful fake of its HTTP API
// (package fake) and the settings and launch logic of the aider-ollama wrapper
// (package aider). This package itself holds no code.
//
// It must not relay traffic: the relay and the proxy own that path.
package ollama
