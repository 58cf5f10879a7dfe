package main

import (
	"fmt"

	"github.com/slapenir/slapenir/internal/version"
)

func init() {
	register("version", "print version and build information", func([]string) int {
		fmt.Println(version.Long())
		return 0
	})
}
