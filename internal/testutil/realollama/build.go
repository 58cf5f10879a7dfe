package realollama

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/slapenir/slapenir/internal/testutil/gobin"
)

// Version is the Ollama release built: the one whose client SLAPENIR's
// go.mod already holds, and whose wire format the fake copies.
const Version = "0.17.4"

// headers are files the build needs that are not in Ollama's module zip,
// and the Debian packages that provide them.
var headers = []struct{ file, pkg string }{
	{"/usr/include/nlohmann/json.hpp", "nlohmann-json3-dev"},
	{"/usr/include/stb/stb_image.h", "libstb-dev"},
}

// miniaudioStub stands in for llama.cpp's vendored miniaudio.h, which the
// module zip leaves out. Only mtmd's audio input decodes with it, and
// nothing here sends audio: every decoder call fails.
const miniaudioStub = `/* SLAPENIR's stub of miniaudio.h: audio decoding is unused (internal/testutil/realollama). */
#pragma once
#include <stddef.h>
#include <stdint.h>
typedef int ma_result;
typedef uint64_t ma_uint64;
typedef uint32_t ma_uint32;
typedef enum { ma_format_f32 = 5 } ma_format;
#define MA_SUCCESS 0
typedef struct { int unused; } ma_decoder_config;
typedef struct { int unused; } ma_decoder;
static ma_decoder_config ma_decoder_config_init(ma_format f, ma_uint32 c, ma_uint32 r) { (void)f; (void)c; (void)r; ma_decoder_config x = {0}; return x; }
static ma_result ma_decoder_init_memory(const void *b, size_t n, const ma_decoder_config *c, ma_decoder *d) { (void)b; (void)n; (void)c; (void)d; return -1; }
static ma_result ma_decoder_get_length_in_pcm_frames(ma_decoder *d, ma_uint64 *n) { (void)d; *n = 0; return -1; }
static ma_result ma_decoder_read_pcm_frames(ma_decoder *d, void *o, ma_uint64 n, ma_uint64 *r) { (void)d; (void)o; (void)n; *r = 0; return -1; }
static ma_result ma_decoder_uninit(ma_decoder *d) { (void)d; return 0; }
`

var tool = gobin.Tool{
	Name:    "ollama",
	Package: "github.com/ollama/ollama",
	Version: "v" + Version,
	Cgo:     true,
	// Without the stamp the server reports version 0.0.0, and clients
	// that check it (and the referee) would see a different server.
	LDFlags: "-X github.com/ollama/ollama/version.Version=" + Version,
	Env:     "SLAPENIR_OLLAMA_BIN",
	Setup: func(scratch string) ([]string, error) {
		if err := os.MkdirAll(filepath.Join(scratch, "miniaudio"), 0o755); err != nil {
			return nil, err
		}
		if err := os.WriteFile(filepath.Join(scratch, "miniaudio", "miniaudio.h"), []byte(miniaudioStub), 0o644); err != nil {
			return nil, err
		}
		// stb/stb_image.h and nlohmann/json.hpp come from
		// /usr/include, where Debian's packages put them.
		return []string{"CGO_CPPFLAGS=-I" + scratch}, nil
	},
}

// Binary returns the path of the ollama binary, building it on first use.
// The test is skipped when there is no binary yet and the build could not
// succeed here: no C++ compiler or missing headers.
func Binary(tb testing.TB) string {
	tb.Helper()
	if p := os.Getenv(tool.Env); p != "" {
		return p
	}
	if !cached() {
		var missing []string
		for _, h := range headers {
			if _, err := os.Stat(h.file); err != nil {
				missing = append(missing, h.pkg)
			}
		}
		if _, err := exec.LookPath("g++"); err != nil {
			missing = append(missing, "g++")
		}
		if len(missing) > 0 {
			tb.Skipf("the real Ollama is built here with its native code and needs %v (Debian: apt-get install nlohmann-json3-dev libstb-dev g++), or set %s to an ollama %s binary", missing, tool.Env, Version)
		}
	}
	return gobin.Binary(tb, tool)
}

// cached reports whether gobin already holds a built binary, which needs
// neither compiler nor headers.
func cached() bool {
	dir, err := os.UserCacheDir()
	if err != nil {
		return false
	}
	_, err = os.Stat(filepath.Join(dir, "slapenir", tool.Name+"-"+tool.Version, tool.Name))
	return err == nil
}
