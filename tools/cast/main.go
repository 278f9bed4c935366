// Command cast converts official CAST checkpoints, runs the model natively (pure Go or XLA), classifies
// videos, and benchmarks. Run `cast help` for the commands.
package main

import (
	"fmt"
	"os"

	"github.com/spf13/cobra"
)

// rootCmd is the `cast` command; each subcommand registers itself from its own file's init.
var rootCmd = &cobra.Command{
	Use:           "cast",
	Short:         "CAST video action recognition: convert, classify, compare, benchmark",
	SilenceUsage:  true,
	SilenceErrors: true,
}

func main() {
	if err := rootCmd.Execute(); err != nil {
		fmt.Fprintln(os.Stderr, "cast:", err)
		os.Exit(2)
	}
}
