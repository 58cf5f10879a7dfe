package main

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// The seed's root .env is read by up as compose reads it: what the
// environment already sets wins; a malformed file names its line, never a
// value; a missing default .env is no error, a missing --env-file is.
func TestUpReadsDotenv(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, ".env")
	os.WriteFile(path, []byte("OLLAMA_HOST=host.docker.internal:11434\nOLLAMA_MODEL='llama3'\nSLAPENIR_TEST_SET=from-file\n"), 0o600)
	env, read, err := withDotenv([]string{"SLAPENIR_TEST_SET=from-env"}, path, false)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(read, []string{"OLLAMA_HOST", "OLLAMA_MODEL"}) {
		t.Errorf("read %v, want OLLAMA_HOST and OLLAMA_MODEL (SLAPENIR_TEST_SET is set already)", read)
	}
	if !slices.Contains(env, "OLLAMA_MODEL=llama3") || !slices.Contains(env, "SLAPENIR_TEST_SET=from-env") || slices.Contains(env, "SLAPENIR_TEST_SET=from-file") {
		t.Errorf("env %v", env)
	}

	if _, _, err := withDotenv(nil, filepath.Join(dir, "none"), false); err != nil {
		t.Errorf("a missing default .env: %v", err)
	}
	if _, _, err := withDotenv(nil, filepath.Join(dir, "none"), true); err == nil {
		t.Error("a missing --env-file was no error")
	}
	os.WriteFile(path, []byte("OK=1\nSECRET=\"never-shown\n"), 0o600)
	_, _, err = withDotenv(nil, path, false)
	if err == nil || !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), "line 2") || strings.Contains(err.Error(), "never-shown") {
		t.Errorf("malformed .env: %v (want its file and line, not its value)", err)
	}
}
