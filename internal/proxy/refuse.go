package proxy

import (
	"encoding/json"
	"net/http"
	"strconv"
)

// errorReply is the one JSON shape every refusal and failure has, whichever of
// the three ways the request came in: a person reads error, a program matches
// reason, and host says which destination was meant.
type errorReply struct {
	Error  string `json:"error"`
	Reason string `json:"reason"`
	Host   string `json:"host,omitempty"`
}

func errorBody(msg, reason, host string) []byte {
	b, _ := json.Marshal(errorReply{Error: msg, Reason: reason, Host: host})
	return append(b, '\n')
}

// writeError sends the JSON error reply and notes it on the exchange's record.
func writeError(w http.ResponseWriter, x *exchange, status int, msg, reason string) {
	if x != nil {
		x.fail(status, reason, msg)
	}
	host := ""
	if x != nil {
		host = x.rec.Host
	}
	body := errorBody(msg, reason, host)
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Content-Length", strconv.Itoa(len(body)))
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

func statusText(code int) string {
	if t := http.StatusText(code); t != "" {
		return t
	}
	return "Error"
}
