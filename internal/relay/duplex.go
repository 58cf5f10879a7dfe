package relay

import "net/http"

// fullDuplex stops net/http from discarding and closing the request body
// when the response head goes out. Without it, a fast upstream (Ollama
// answers as soon as it has the body's last byte) races the transport still
// reading the body's EOF: the read fails, the transport drops the upstream
// connection, and the stream is cut a few hundred tokens in.
func fullDuplex(w http.ResponseWriter) {
	_ = http.NewResponseController(w).EnableFullDuplex()
}
