//go:build !(js && wasm)

package main

import (
	"fmt"
	"os"
)

func main() {
	fmt.Fprintln(os.Stderr, "shardworker runs in workerd: build it with worker/shard-build.sh DIST (GOOS=js GOARCH=wasm) and serve a sharded model with ./build.sh edge-serve DIR")
	os.Exit(2)
}
