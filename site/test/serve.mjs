// Shared by the browser tests: start tools/serve on a free loopback port.
import { spawn } from "node:child_process";

// startServe runs the serve binary on dist at 127.0.0.1 on a free port and resolves to {server, url} once it
// says where it listens (or rejects after 15 s, or when it exits first).
export async function startServe(serveBin, dist) {
  const server = spawn(serveBin, ["--dir", dist, "--addr", "127.0.0.1:0"], { stdio: ["ignore", "ignore", "pipe"] });
  const url = await new Promise((resolve, reject) => {
    let buf = "";
    const timer = setTimeout(() => reject(new Error(`serve did not start: ${buf}`)), 15000);
    server.stderr.on("data", (d) => {
      buf += d;
      const m = /serving .* on (http:\/\/127\.0\.0\.1:\d+\/)/.exec(buf);
      if (m) { clearTimeout(timer); resolve(m[1]); }
    });
    server.on("exit", (code) => reject(new Error(`serve exited with ${code}: ${buf}`)));
  });
  server.stderr.resume();
  return { server, url };
}
