# workerd configuration for serving the castgo edge worker locally (no wrangler needed):
#
#   worker/build.sh dist/worker
#   node_modules/.bin/workerd serve dist/worker/workerd.capnp --socket-addr http=127.0.0.1:8787
#
# worker/build.sh copies this file next to the modules it names (entry.mjs, wasm_exec.js and runtime.mjs
# from syumai/workers' workers-assets-gen -mode=go, app.wasm from the Go build). The socket address below
# is the default; --socket-addr http=HOST:PORT overrides it (./build.sh worker-serve and the tests do).
#
# To serve a model from R2 instead of the embedded default, add bindings such as
#   (name = "MODEL_BUCKET", r2Bucket = "castgo-models"), (name = "MODEL_KEY", text = "cast-b16.safetensors")
# together with a service "castgo-models" that implements the R2 API (wrangler dev simulates R2 locally).
using Workerd = import "/workerd/workerd.capnp";

const config :Workerd.Config = (
  services = [(name = "castgo", worker = .castgoWorker)],
  sockets = [(name = "http", address = "127.0.0.1:8787", http = (), service = "castgo")],
);

const castgoWorker :Workerd.Worker = (
  modules = [
    (name = "entry.mjs", esModule = embed "entry.mjs"),
    (name = "wasm_exec.js", esModule = embed "wasm_exec.js"),
    (name = "runtime.mjs", esModule = embed "runtime.mjs"),
    (name = "app.wasm", wasm = embed "app.wasm"),
  ],
  compatibilityDate = "2025-11-01",
);
