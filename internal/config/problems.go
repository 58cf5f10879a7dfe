package config

import "github.com/slapenir/slapenir/internal/yamlcheck"

// Problem is one thing wrong with a configuration; Problems, the error
// Load, Parse and Validate return, lists every one (the same report the
// service file's gets: package yamlcheck).
type (
	Problem  = yamlcheck.Problem
	Problems = yamlcheck.Problems
)
