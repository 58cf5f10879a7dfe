// Package realollama gives tests the real Ollama server with a real (tiny)
// model, so the path SLAPENIR carries — helper, relay, proxy — and its fake
// Ollama are checked against the thing itself, not against what the fake
// believes Ollama does.
//
//   - Binary builds Ollama from the Go module proxy with its native code
//     (cgo, llama.cpp and ggml; about 10 CPU-minutes once, then cached in the
//     user's cache directory by gobin). It needs g++ and the headers the
//     module zip leaves out (Debian: nlohmann-json3-dev libstb-dev); without
//     them the test is skipped, naming the packages. SLAPENIR_OLLAMA_BIN
//     names a binary to use instead.
//   - WriteModel writes a random-weight Llama (hidden size 64, 2 layers, a
//     byte-level BPE vocabulary of about 300 tokens) as a safetensors
//     directory; ModelsDir has Ollama's create convert it once (cached by a
//     hash of what was written) and hands each test a copy of the models
//     directory holding Model. Nothing is downloaded.
//   - Start runs `ollama serve` on that directory and stops it when the
//     test ends, showing its log if the test failed.
//
// The model answers garbage, repeatably (a fixed seed), one token per
// streamed chunk, and never its end token: an answer runs to num_predict
// (DefaultTokens unless the request says otherwise).
//
// It must only be imported from tests and benchmarks. It owns building,
// creating and running Ollama, not asserting anything about it.
package realollama
