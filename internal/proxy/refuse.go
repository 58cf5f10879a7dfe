package proxy

import (
	"net/http"

	"github.com/slapenir/slapenir/internal/jsonreply"
)

// errorReply is the one JSON shape every refusal and failure has, whichever
// of the three ways the request came in.
type errorReply = jsonreply.Body

func errorBody(msg, reason, host string) []byte {
	return jsonreply.Encode(jsonreply.Body{Error: msg, Reason: reason, Host: host})
}

// writeError sends the JSON error reply and notes it on the exchange's record.
func writeError(w http.ResponseWriter, x *exchange, status int, msg, reason string) {
	if x != nil {
		x.fail(status, reason, msg)
	}
	host := ""
	if x != nil {
		host = x.p.host
	}
	jsonreply.Write(w, status, jsonreply.Body{Error: msg, Reason: reason, Host: host})
}

func statusText(code int) string {
	if t := http.StatusText(code); t != "" {
		return t
	}
	return "Error"
}
