// Package verify is the seed's start-up check of the Ollama path: it asks the
// SLAPENIR proxy for its health, then Ollama's model list through the proxy
// (X-Target-URL), retrying while Ollama or the proxy come up, and says in the
// seed's log lines whether Ollama is reachable and the model is there.
//
// It owns the check and its wording. It must not start anything, pull models,
// or reach Ollama any way but through the proxy: a check that went around the
// proxy would prove nothing about the path the agent uses.
package verify
