/**
 * One log-throughput measurement for scripts/bench.ts, in a process of its
 * own: `deno run -A scripts/_logbench.ts file|syslog|plain N [socket|path]`.
 * Prints the elapsed milliseconds. For `file`, stderr must be the file.
 */
import { libc } from "../ffi/mod.ts";
import { DroppedRecords } from "../src/dropped.ts";
import { setupLogging } from "../src/log.ts";
import { FACILITIES } from "../src/syslog.ts";

const [mode, count, where] = Deno.args;
const n = Number(count);
const t0 = performance.now();
if (mode === "plain") {
  for (let i = 0; i < n; i++) {
    Deno.writeTextFileSync(where, `line ${i}\n`, { append: true });
  }
} else {
  const log = setupLogging({
    dropped: new DroppedRecords(),
    name: "bench",
    level: "info",
    format: "text",
    journald: false,
    color: false,
    syslog: mode === "syslog"
      ? { libc: libc(), socket: where, facility: FACILITIES.local0 }
      : undefined,
  });
  for (let i = 0; i < n; i++) log.info("line {i}", { i });
}
console.log(performance.now() - t0);
