package main

import (
	"fmt"
	"io"

	"github.com/slapenir/slapenir/internal/version"
)

func runVersion(_ []string, stdout, _ io.Writer) int {
	fmt.Fprintln(stdout, version.Long())
	return 0
}
