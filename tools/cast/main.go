// Command cast converts official CAST checkpoints, runs the model natively (pure Go or XLA), classifies
// videos, and benchmarks. Run `cast help` for the commands.
//
// Every command is built the same way: newXCmd() returns the *cobra.Command, whose flags fill an xOptions
// struct, and whose RunE calls runX(ctx, opts); newRootCmd lists them all (no init() registers a command).
package main

import (
	"fmt"
	"os"

	"github.com/castvideo/castgo/cast/infer"
	"github.com/spf13/cobra"
)

// rootCmd is the `cast` command with every subcommand of newRootCmd.
var rootCmd = newRootCmd()

// newRootCmd builds the `cast` command, its global --backend flag and the subcommands.
func newRootCmd() *cobra.Command {
	root := &cobra.Command{
		Use:           "cast",
		Short:         "CAST video action recognition: convert, classify, compare, benchmark",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.PersistentFlags().StringVar(&backendFlag, "backend", "", "compute backend: castgo[:config] (castgo's pure-Go backend, default; alias go[:config]), simplego (GoMLX's reference pure-Go backend), xla[:plugin] (needs -tags xla and a PJRT plugin), or, for bench only, wasm (the WASM module under Node); default $"+infer.BackendEnv)
	root.AddCommand(
		newBenchCmd(),
		newClassifyCmd(),
		newCompareCmd(),
		newConvertCmd(),
		newDatasetCmd(),
		newEvalCmd(),
		newExplainCmd(),
		newInfoCmd(),
		newLogitsCmd(),
		newQuantizeCmd(),
		newShardCmd(),
		newTrainCmd(),
	)
	return root
}

func main() {
	if err := rootCmd.Execute(); err != nil {
		fmt.Fprintln(os.Stderr, "cast:", err)
		os.Exit(2)
	}
}
