// Package ollamapath measures what SLAPENIR's Ollama path (the agent's
// helper → relay → proxy) adds to a real Ollama's streamed answers: the
// delay to the first token and per token, against the same server asked
// directly, in interleaved rounds, and the proxy's CPU time per request.
//
// It is a benchmark run by bench/ollama-path.sh, written as a test so it can
// use internal/testutil/realollama; it is skipped unless
// SLAPENIR_BENCH_OLLAMA_PATH=1. It measures and prints, and asserts nothing
// about timings.
package ollamapath
