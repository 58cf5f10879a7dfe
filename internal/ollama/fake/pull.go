package fake

import (
	"net/http"
)

// pullSteps is how many progress lines the download of the one layer takes.
const pullSteps = 4

// handlePull imitates "ollama pull": the progress stream of a one-layer
// download, after which the fake has the model. Every name can be pulled.
func (s *Server) handlePull(w http.ResponseWriter, r *http.Request) {
	req, ok := decodeModel(w, r, "PullRequest")
	if !ok {
		return
	}
	name := shortName(req.model())
	digest := "sha256:" + digestOf(name)
	progress := []progressResponse{{Status: "pulling manifest"}}
	for i := range pullSteps + 1 {
		progress = append(progress, progressResponse{
			Status: "pulling " + digest[7:19], Digest: digest,
			Total: modelSize, Completed: modelSize * int64(i) / pullSteps,
		})
	}
	progress = append(progress,
		progressResponse{Status: "verifying sha256 digest"},
		progressResponse{Status: "writing manifest"},
		progressResponse{Status: "success"})

	out := ndjson{w}
	for i, p := range progress {
		if i > 0 {
			if sleep(r.Context(), s.opts.TokenDelay) != nil {
				return
			}
		}
		if p.Status == "success" {
			s.addModel(name)
		}
		if !isStreaming(req.Stream) {
			continue
		}
		if out.line(p) != nil {
			return
		}
	}
	if !isStreaming(req.Stream) {
		// Ollama's waitForStream answers with the last progress only.
		writeJSON(w, http.StatusOK, progressResponse{Status: "success"})
	}
}
