// Package jsonreply writes the one JSON shape every refusal and failure
// of SLAPENIR has, from the proxy and from the relay alike: a person reads
// error, a program matches reason (one vocabulary for both), and host says
// which destination was meant. Ollama clients show error too: it is
// Ollama's own field.
//
// It owns the shape and the headers; it must not decide statuses or
// reasons.
package jsonreply

import (
	"encoding/json"
	"net/http"
	"strconv"
)

// Body is the reply.
type Body struct {
	Error  string `json:"error"`
	Reason string `json:"reason,omitempty"`
	Host   string `json:"host,omitempty"`
}

// Encode is b as the bytes Write sends.
func Encode(b Body) []byte {
	out, _ := json.Marshal(b)
	return append(out, '\n')
}

// Write sends b with status: JSON of an exact length, never sniffed as
// something else.
func Write(w http.ResponseWriter, status int, b Body) {
	body := Encode(b)
	h := w.Header()
	h.Set("Content-Type", "application/json; charset=utf-8")
	h.Set("Content-Length", strconv.Itoa(len(body)))
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_, _ = w.Write(body)
}
