// Command shardconfig writes the configurations that serve a sharded model (package shard) with the shard
// worker (worker/shard-build.sh DIST): a workerd config for local serving (./build.sh edge-serve) and one
// wrangler config per worker for deployment.
//
//	go run ./worker/cmd/shardconfig -shards DIR -dist DIST [-name castgo] [-prefix KEY/] [-timeout-ms N]
//
// It reads DIR/manifest.json and writes into DIST (beside the modules the configs name):
//
//   - workerd.capnp: the coordinator (ROLE=coordinator, bound to every stage as STAGE_I) on the socket
//     "http", one service per stage (ROLE=stage, STAGE_INDEX=I), and a disk service holding DIR that
//     every worker reads the manifest and its stage file from (binding SHARDS).
//   - wrangler-coordinator.toml, wrangler-stage-I.toml: the same workers for Cloudflare, named NAME and
//     NAME-stage-I, with service bindings from the coordinator to each stage and an R2 binding
//     MODEL_BUCKET (bucket NAME-models; objects under -prefix) instead of the disk service.
package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/castvideo/castgo/cast/shard"
)

func main() {
	dir := flag.String("shards", "", "sharded model directory (cast shard --out)")
	dist := flag.String("dist", "", "the shard worker's dist directory (worker/shard-build.sh)")
	name := flag.String("name", "castgo", "worker name prefix for the wrangler configs")
	prefix := flag.String("prefix", "", "R2 key prefix of the manifest and stage files (wrangler configs)")
	timeout := flag.Int("timeout-ms", 0, "STAGE_TIMEOUT_MS of the coordinator (0: the default)")
	flag.Parse()
	if err := run(*dir, *dist, *name, *prefix, *timeout); err != nil {
		fmt.Fprintln(os.Stderr, "shardconfig:", err)
		os.Exit(1)
	}
}

func run(dir, dist, name, prefix string, timeoutMS int) error {
	if dir == "" || dist == "" {
		return fmt.Errorf("-shards and -dist are required")
	}
	m, err := shard.ReadManifest(dir)
	if err != nil {
		return err
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dist, "workerd.capnp"), []byte(Workerd(m, abs, timeoutMS)), 0o644); err != nil {
		return err
	}
	for file, text := range Wrangler(m, name, prefix, timeoutMS) {
		if err := os.WriteFile(filepath.Join(dist, file), []byte(text), 0o644); err != nil {
			return err
		}
	}
	fmt.Printf("wrote %s/workerd.capnp and %d wrangler configs for %q (%d stages)\n", dist, len(m.Stages)+1, m.Name, len(m.Stages))
	return nil
}

// Workerd returns the workerd config serving m's shards from the directory abs.
func Workerd(m *shard.Manifest, abs string, timeoutMS int) string {
	var b strings.Builder
	fmt.Fprintf(&b, `# workerd config of the sharded model %q (%d stages), written by worker/cmd/shardconfig.
# Serve it with: node_modules/.bin/workerd serve workerd.capnp --socket-addr http=127.0.0.1:8787
using Workerd = import "/workerd/workerd.capnp";

const config :Workerd.Config = (
  services = [
    (name = "coordinator", worker = .coordinator),
`, m.Name, len(m.Stages))
	for i := range m.Stages {
		fmt.Fprintf(&b, "    (name = \"stage-%d\", worker = .stage%d),\n", i, i)
	}
	fmt.Fprintf(&b, "    (name = \"shards\", disk = (path = %q, writable = false)),\n", abs)
	b.WriteString("    # extra services\n  ],\n  sockets = [\n    (name = \"http\", address = \"127.0.0.1:8787\", http = (), service = \"coordinator\"),\n    # extra sockets\n  ],\n);\n\n")
	modules := `  modules = [
    (name = "entry.mjs", esModule = embed "entry.mjs"),
    (name = "wasm_exec.js", esModule = embed "wasm_exec.js"),
    (name = "runtime.mjs", esModule = embed "runtime.mjs"),
    (name = "app.wasm", wasm = embed "app.wasm"),
  ],
  compatibilityDate = "2025-11-01",
`
	b.WriteString("const coordinator :Workerd.Worker = (\n" + modules + "  bindings = [\n    (name = \"ROLE\", text = \"coordinator\"),\n    (name = \"SHARDS\", service = \"shards\"),\n")
	if timeoutMS > 0 {
		fmt.Fprintf(&b, "    (name = \"STAGE_TIMEOUT_MS\", text = \"%d\"),\n", timeoutMS)
	}
	for i := range m.Stages {
		fmt.Fprintf(&b, "    (name = \"STAGE_%d\", service = \"stage-%d\"),\n", i, i)
	}
	b.WriteString("  ],\n);\n")
	for i := range m.Stages {
		fmt.Fprintf(&b, "\nconst stage%d :Workerd.Worker = (\n%s  bindings = [\n    (name = \"ROLE\", text = \"stage\"),\n    (name = \"STAGE_INDEX\", text = \"%d\"),\n    (name = \"SHARDS\", service = \"shards\"),\n  ],\n);\n", i, modules, i)
	}
	return b.String()
}

// Wrangler returns one wrangler config per worker, by file name.
func Wrangler(m *shard.Manifest, name, prefix string, timeoutMS int) map[string]string {
	out := map[string]string{}
	head := func(worker, role string) string {
		return fmt.Sprintf(`# %s of the sharded model %q (%d stages), written by worker/cmd/shardconfig. Deploy the stages first:
#   npx wrangler@4.86.0 deploy --config %s
name = %q
main = "entry.mjs"
compatibility_date = "2025-11-01"
workers_dev = false

[limits]
cpu_ms = 300000

[[r2_buckets]]
binding = "MODEL_BUCKET"
bucket_name = %q

[vars]
ROLE = %q
SHARD_PREFIX = %q
`, worker, m.Name, len(m.Stages), "wrangler-"+strings.TrimPrefix(worker, name+"-")+".toml", worker, name+"-models", role, prefix)
	}
	for i := range m.Stages {
		w := fmt.Sprintf("%s-stage-%d", name, i)
		out[fmt.Sprintf("wrangler-stage-%d.toml", i)] = head(w, "stage") + fmt.Sprintf("STAGE_INDEX = \"%d\"\n", i)
	}
	c := strings.Replace(head(name, "coordinator"), "workers_dev = false", "workers_dev = true", 1)
	c = strings.Replace(c, "wrangler-"+name+".toml", "wrangler-coordinator.toml", 1)
	if timeoutMS > 0 {
		c += fmt.Sprintf("STAGE_TIMEOUT_MS = \"%d\"\n", timeoutMS)
	}
	for i := range m.Stages {
		c += fmt.Sprintf("\n[[services]]\nbinding = \"STAGE_%d\"\nservice = \"%s-stage-%d\"\n", i, name, i)
	}
	out["wrangler-coordinator.toml"] = c
	return out
}
