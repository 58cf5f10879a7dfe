package relay

import (
	"fmt"
	"net"
	"net/url"
	"strings"
)

// DefaultOllamaHost is the seed's OLLAMA_HOST: Ollama on the Docker host.
const DefaultOllamaHost = "host.docker.internal:11434"

// ollamaPort is Ollama's own default, which its clients add to an
// OLLAMA_HOST without a port.
const ollamaPort = "11434"

// OllamaTarget turns an OLLAMA_HOST value into the X-Target-URL the helper
// sends: "host:port" (the seed's form) and Ollama's own forms "host",
// "http://host:port" are accepted; empty means DefaultOllamaHost.
func OllamaTarget(ollamaHost string) (string, error) {
	v := strings.TrimSpace(ollamaHost)
	if v == "" {
		v = DefaultOllamaHost
	}
	if !strings.Contains(v, "://") {
		v = "http://" + v
	}
	u, err := url.Parse(v)
	if err != nil || u.Hostname() == "" || (u.Scheme != "http" && u.Scheme != "https") || (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.User != nil {
		return "", fmt.Errorf("relay: OLLAMA_HOST=%q is not host:port (e.g. %s)", ollamaHost, DefaultOllamaHost)
	}
	port := u.Port()
	if port == "" {
		port = ollamaPort
	}
	return u.Scheme + "://" + net.JoinHostPort(u.Hostname(), port), nil
}
