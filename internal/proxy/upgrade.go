package proxy

import (
	"errors"
	"io"
	"net/http"
)

// errUnscannableUpgrade refuses a protocol switch while secrets are being
// redacted: the upgraded stream (WebSocket frames, say) cannot be rewritten
// without breaking its framing, and it must not pass unscanned.
var errUnscannableUpgrade = errors.New("the upstream switched protocols (WebSocket or similar), whose stream the proxy cannot scan for secrets; refused while credentials are configured")

// upgraded lets a 101 Switching Protocols through: net/http hands the raw
// connections to the reverse proxy, past the response recorder, so the
// record's status and byte counts are taken here.
func (s *Server) upgraded(resp *http.Response, x *exchange) error {
	if x.st.creds.active() {
		return errUnscannableUpgrade
	}
	x.out.status = http.StatusSwitchingProtocols
	if rwc, ok := resp.Body.(io.ReadWriteCloser); ok {
		resp.Body = &countingUpgrade{ReadWriteCloser: rwc, x: x}
	}
	return nil
}

// countingUpgrade counts an upgraded connection's bytes: reads come from
// the upstream (out to the client), writes go to it (in from the client).
type countingUpgrade struct {
	io.ReadWriteCloser
	x *exchange
}

func (c *countingUpgrade) Read(p []byte) (int, error) {
	n, err := c.ReadWriteCloser.Read(p)
	c.x.upgradedOut.Add(int64(n))
	return n, err
}

func (c *countingUpgrade) Write(p []byte) (int, error) {
	n, err := c.ReadWriteCloser.Write(p)
	c.x.bytesIn.Add(int64(n))
	return n, err
}
