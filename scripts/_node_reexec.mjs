// The Node.js reference for `deno task bench`: a daemon that re-executes
// itself detached and waits on a readiness pipe, in as few lines as Node
// allows. The launcher prints the daemon's pid once it said READY.
import { spawn } from "node:child_process";
import { createServer } from "node:http";
import { closeSync, writeSync } from "node:fs";

if (process.env.REEXEC_DAEMON === "1") {
  createServer((_, res) => res.end("ok")).listen(0, "127.0.0.1", () => {
    writeSync(3, "READY\n");
    closeSync(3);
  });
} else {
  const child = spawn(process.execPath, [process.argv[1]], {
    detached: true,
    stdio: ["ignore", "ignore", "ignore", "pipe"],
    env: { ...process.env, REEXEC_DAEMON: "1" },
  });
  child.stdio[3].once("data", () => {
    console.log(child.pid);
    process.exit(0);
  });
}
