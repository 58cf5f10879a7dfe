package relay

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strconv"

	"github.com/slapenir/slapenir/internal/jsonreply"
)

// maxProxyError bounds how much of a proxy error reply is read to reword it;
// the proxy's replies are one short JSON line.
const maxProxyError = 64 << 10

// proxyReply is the proxy's JSON error shape.
type proxyReply struct {
	Error  string `json:"error"`
	Reason string `json:"reason"`
}

// inspect rewords the proxy's "upstream failed" 502 so the Ollama client
// says which hop failed, and arranges for a stream cut in the middle to end
// with an error line the client will report, rather than just stopping.
func (h *helper) inspect(resp *http.Response) error {
	if resp.StatusCode == http.StatusBadGateway && isJSON(resp.Header) {
		return h.reword(resp)
	}
	if resp.StatusCode == http.StatusOK && isNDJSON(resp.Header) {
		resp.Body = &cutReporter{body: resp.Body, what: "Ollama at " + h.target, atLineStart: true}
	}
	return nil
}

func (h *helper) reword(resp *http.Response) error {
	raw, err := io.ReadAll(io.LimitReader(resp.Body, maxProxyError))
	_ = resp.Body.Close()
	if err != nil {
		return fmt.Errorf("reading the proxy's 502 reply: %w", err)
	}
	var pr proxyReply
	msg := ""
	if json.Unmarshal(raw, &pr) == nil && pr.Reason == reasonUpstreamFailed {
		msg = fmt.Sprintf("ollama helper: %s failed: the SLAPENIR proxy could not reach Ollama at %s (%s); check that Ollama runs (ollama serve) and listens where OLLAMA_HOST says",
			hopProxyOllama, h.target, pr.Error)
	}
	if msg == "" {
		// Not the proxy's own failure: pass it on unchanged.
		resp.Body = io.NopCloser(bytes.NewReader(raw))
		resp.ContentLength = int64(len(raw))
		resp.Header.Set("Content-Length", strconv.Itoa(len(raw)))
		return nil
	}
	body := jsonreply.Encode(jsonreply.Body{Error: msg, Reason: pr.Reason})
	resp.Body = io.NopCloser(bytes.NewReader(body))
	resp.ContentLength = int64(len(body))
	resp.Header.Set("Content-Length", strconv.Itoa(len(body)))
	return nil
}

func isJSON(h http.Header) bool {
	mt, _, _ := mime.ParseMediaType(h.Get("Content-Type"))
	return mt == "application/json"
}

func isNDJSON(h http.Header) bool {
	mt, _, _ := mime.ParseMediaType(h.Get("Content-Type"))
	return mt == "application/x-ndjson"
}
