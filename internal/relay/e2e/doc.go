// Package e2e tests the relay's commands as users run them: the slapenir
// binary, built once for the tests, started as "slapenir relay" and under the
// seed's program names (ollama-proxy-helper, ollama-verify, aider-ollama),
// against the real proxy and the fake Ollama on loopback.
//
// It holds tests only; nothing imports it.
package e2e
