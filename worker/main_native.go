//go:build !(js && wasm)

// Command worker is the CAST edge worker: the HTTP API of package edge served from Cloudflare Workers
// (workerd) through github.com/syumai/workers. Built with GOOS=js GOARCH=wasm (see build.sh) it loads the
// model once per isolate and serves every request of the isolate from one long-lived Go instance (see
// entry.mjs and README.md). Built natively it serves the same API with net/http on 127.0.0.1:$PORT
// (default 9900), for debugging.
package main

import (
	"fmt"
	"net/http"
	"os"
	"time"

	"github.com/castvideo/castgo/models"
	"github.com/castvideo/castgo/worker/edge"
)

func main() {
	srv := edge.NewServer()
	srv.SetModel(edge.LoadModel(models.DefaultInt8Bytes(), "embedded:"+models.DefaultName+"-int8"))
	port := os.Getenv("PORT")
	if port == "" {
		port = "9900"
	}
	addr := "127.0.0.1:" + port
	fmt.Fprintf(os.Stderr, "castgo worker (native, for debugging) on http://%s\n", addr)
	hs := &http.Server{Addr: addr, Handler: srv, ReadHeaderTimeout: 10 * time.Second}
	if err := hs.ListenAndServe(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
