// Command sluice is the Sluice AI gateway: run it, validate configuration,
// or serve the offline LLM stand-in.
package main

import (
	"fmt"
	"os"
)

func main() {
	if err := newRootCommand().Execute(); err != nil {
		fmt.Fprintln(os.Stderr, "sluice:", err)
		os.Exit(exitCode(err))
	}
}
