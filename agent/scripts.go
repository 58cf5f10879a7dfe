// Package agentfiles owns the files of the agent's image that are not the
// slapenir binary and that slapenir up must also give its agent: today the
// seed's Option C, ollama-proxy-helper.py. The Dockerfile copies them from
// this directory; up writes the embedded copies, so the image and up run
// the same file. It must hold no logic of its own: each script hands over
// to the binary.
package agentfiles

import _ "embed"

// OllamaProxyHelperPy is agent/ollama-proxy-helper.py: it execs the
// ollama-proxy-helper beside it (the binary under that name).
//
//go:embed ollama-proxy-helper.py
var OllamaProxyHelperPy []byte

// OllamaProxyHelperPyName is its file name in the agent's scripts
// directory, as the seed calls it.
const OllamaProxyHelperPyName = "ollama-proxy-helper.py"
