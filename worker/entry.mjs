// castgo edge worker entry: one long-lived Go instance per isolate.
//
// syumai/workers' generated shim (worker.mjs from workers-assets-gen) instantiates app.wasm and runs a
// fresh Go program for every request, so a model loaded in Go's main would be loaded again on each
// request. This entry replaces it and keeps the generated pieces: wasm_exec.js (Go's support file with
// syumai's runtime-context proxy: Go's js.Global().Get("context") is the object passed to go.run) and
// runtime.mjs (which imports app.wasm and cloudflare:sockets).
//
//   - The Go instance is started lazily by the first request (workerd forbids generating random values,
//     which the Go runtime does at start, in the global scope) and kept in module scope: every later
//     request of the isolate reuses it. Concurrent first requests share one start-up promise.
//   - Go's main loads the model, registers syumai's handleRequest on the binding object, calls
//     workers.Ready() and blocks forever. Each request calls binding.handleRequest(req), which returns a
//     Promise of the Response; classifications queue on a mutex in Go.
//   - The runtime context object stays the same (Go captured it at start), so its env and ctx fields are
//     updated to the current request's before each dispatch.
//   - A Go program that registers binding.handleBytes (the shard worker's stage role) gets each request
//     body whole: one `await request.arrayBuffer()`, passed as a Uint8Array (Go copies it with
//     js.CopyBytesToGo), and answers one Uint8Array; a body over binding.maxBodyBytes is answered 413
//     unread. syumai's handleRequest streams a body in 16 KiB chunks, a JS↔Go round trip each, which is
//     what a view's activations (9.7 MB for base) cannot afford. Other programs (the single-isolate
//     worker, the coordinator) keep handleRequest.
//   - If the Go program ever exits (a runtime crash), requests in flight get a 500 and the next request
//     starts a new instance (globalThis.__castgoInstances counts them; GET /healthz reports it).
//   - workerd ties a promise to the request that created it: a later request must not await a promise
//     of the first request that is still pending (it is rejected as one that "can never settle"). So the
//     start-up promise is only awaited once settled or by concurrent first requests, and each request
//     watches for an exit with its own promise.
import "./wasm_exec.js";
import { createRuntimeContext, loadModule } from "./runtime.mjs";

// syumai/workers' Go code calls this helper to catch JavaScript exceptions.
globalThis.tryCatch = (fn) => {
  try {
    return { result: fn() };
  } catch (e) {
    return { error: e };
  }
};

let current = null; // Promise<{binding, runtime, exited}> of the live Go instance

async function startGo(env, ctx) {
  const mod = await loadModule();
  const binding = {};
  const runtime = createRuntimeContext({ env, ctx, binding });
  const go = new Go();
  // Settled by Go's workers.Ready() or by the program's exit. Promises belong to the request that created
  // them in workerd, so requests never await this instance's promises after start-up: exits are signalled
  // through the onExit callbacks, each creating request's own promise.
  let ready;
  const readyPromise = new Promise((resolve) => {
    ready = resolve;
  });
  const instance = new WebAssembly.Instance(mod, {
    ...go.importObject,
    workers: { ready: () => ready(null) },
  });
  globalThis.__castgoInstances = (globalThis.__castgoInstances || 0) + 1;
  // The size of the wasm linear memory (it never shrinks: its peak), for Go (the shard worker reports it).
  globalThis.__castgoWasmMemoryBytes = () => instance.exports.mem.buffer.byteLength;
  const inst = { binding, runtime, exitReason: null, onExit: new Set() };
  // wasm_exec.js calls _resolveExitPromise synchronously when the program exits (in whichever request's
  // event that happens); go.run's own promise belongs to the first request and may never settle later.
  const resolveExit = go._resolveExitPromise;
  go._resolveExitPromise = () => {
    exitWith(inst, "the Go program exited", ready);
    resolveExit();
  };
  go.run(instance, runtime).catch((e) => exitWith(inst, `the Go program failed: ${e && e.message ? e.message : e}`, ready));
  const early = await readyPromise;
  if (early !== null) throw new Error(`${early} before it was ready`);
  return inst;
}

function exitWith(inst, reason, ready) {
  if (inst.exitReason !== null) return;
  inst.exitReason = reason;
  ready(reason);
  if (current && current.inst === inst) current = null;
  for (const f of inst.onExit) f(reason);
  inst.onExit.clear();
}

function errorResponse(status, message) {
  return new Response(JSON.stringify({ error: message }) + "\n", {
    status,
    headers: { "content-type": "application/json; charset=utf-8", "cache-control": "no-store" },
  });
}

// readBody reads a request body whole, refusing one over max bytes (null: within it, the bytes).
// drainMax: a body over a worker's maximum is refused (413), but one up to drainMax bytes is read and dropped
// first, chunk by chunk, so that an HTTP/1.1 client still sending it gets the answer rather than a broken pipe
// (as Go's net/http does for unread bodies); a larger one is refused unread.
const drainMax = 64 << 20;

// dropRest reads and drops what is left of a body of which n bytes were read, up to drainMax in all.
async function dropRest(reader, n) {
  while (n <= drainMax) {
    const { done, value } = await reader.read();
    if (done) return;
    n += value.length;
  }
  await reader.cancel();
}

async function readBody(req, max) {
  const cl = req.headers.get("content-length");
  if (cl !== null && Number(cl) > max) {
    if (Number(cl) <= drainMax) await dropRest(req.body.getReader(), 0);
    return null;
  }
  if (cl !== null) return new Uint8Array(await req.arrayBuffer());
  const chunks = [];
  let n = 0;
  const reader = req.body.getReader();
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    n += value.length;
    if (n > max) {
      await dropRest(reader, n);
      return null;
    }
    chunks.push(value);
  }
  const out = new Uint8Array(n);
  let off = 0;
  for (const c of chunks) {
    out.set(c, off);
    off += c.length;
  }
  return out;
}

// handleBytes serves req through binding.handleBytes (see the header comment).
async function handleBytes(binding, req, ctx) {
  let body = null;
  if (req.body !== null) {
    const max = binding.maxBodyBytes;
    body = await readBody(req, max);
    if (body === null || body.length > max) {
      return errorResponse(413, `worker: the request body is over the ${max} bytes this worker takes`);
    }
  }
  const r = await binding.handleBytes(req.method, req.url, [...req.headers], body);
  body = null;
  const empty = req.method === "HEAD" || [101, 204, 205, 304].includes(r.status);
  try {
    return new Response(empty ? null : r.body, { status: r.status, headers: r.headers });
  } finally {
    // The Go handler answered before it finished (the stage collects its garbage after answering): let it
    // go on once this answer is on its way (or failed).
    // The timer is tied to this request: keep the request's context alive until it has fired (workerd drops
    // a finished request's pending timers, and the stage would then stay busy with this view).
    if (typeof r.resume === "function") {
      const resumed = new Promise((resolve) => setTimeout(() => {
        try {
          r.resume();
        } finally {
          resolve();
        }
      }, 0));
      if (ctx && typeof ctx.waitUntil === "function") ctx.waitUntil(resumed);
    }
  }
}

async function fetch(req, env, ctx) {
  if (current === null) {
    const p = startGo(env, ctx);
    // Keep the starting request's context alive until Go is ready, even if that request ends first (a
    // client that gave up): its I/O (reading the model) would be cancelled and the start would never settle.
    if (ctx && typeof ctx.waitUntil === "function") ctx.waitUntil(p.catch(() => {}));
    current = { promise: p, inst: null };
    const slot = current;
    p.then(
      (inst) => {
        slot.inst = inst;
      },
      () => {
        if (current === slot) current = null;
      },
    );
  }
  let inst;
  try {
    inst = await current.promise;
  } catch (e) {
    return errorResponse(503, `worker: starting the Go instance: ${e && e.message ? e.message : e}`);
  }
  if (inst.exitReason !== null) {
    return errorResponse(500, `worker: ${inst.exitReason}`);
  }
  inst.runtime.env = env;
  inst.runtime.ctx = ctx;
  let onExit;
  const exited = new Promise((resolve) => {
    onExit = (why) => resolve(errorResponse(500, `worker: ${why} while handling the request`));
  });
  inst.onExit.add(onExit);
  try {
    const b = inst.binding;
    const res = typeof b.handleBytes === "function" ? handleBytes(b, req, ctx) : b.handleRequest(req);
    return await Promise.race([res, exited]);
  } catch (e) {
    return errorResponse(500, `worker: ${e && e.message ? e.message : e}`);
  } finally {
    inst.onExit.delete(onExit);
  }
}

export default { fetch };
