/**
 * A payload turned hostile after the drop, and the files its user owns:
 * nothing it does to them holds root's commands beyond their own timeouts.
 */
import assert from "node:assert/strict";
import { asRoot, cli, ROOT, waitFor, withScratch } from "./helpers.ts";

const HOSTILE = `${ROOT}tests/fixtures/hostile_r7.ts`;

Deno.test({
  ...asRoot(
    "`start` is not held by a lease the daemon's user takes on its log file",
  ),
  fn: () =>
    withScratch(async (s) => {
      Deno.chmodSync(s.dir, 0o755);
      const began = performance.now();
      const r = await cli(HOSTILE, [
        "start",
        ...s.paths,
        "--user",
        "nobody",
        "--attack",
        "log-lease",
        "--ready-timeout",
        "3",
        "--stop-timeout",
        "1",
      ], { timeout: 120 });
      const took = (performance.now() - began) / 1000;
      assert.equal(r.code, 1, r.stdout + r.stderr);
      assert.match(s.log(), /ATTACK log-lease: holding a write lease/);
      assert.match(r.stderr, /not ready within 3 s/);
      // 3 s of --ready-timeout and 1 s of --stop-timeout, with room for a
      // loaded machine; an open that waits for the lease takes 45 s more.
      assert.ok(took < 25, `start took ${took.toFixed(1)} s: ${r.stderr}`);
    }),
});

/** `read(2)`'s number in `/proc/PID/task/TID/syscall`. */
const READ = Deno.build.arch === "x86_64" ? 0 : 63;

/** The threads of `pid` blocked in `read(2)` on a pipe: "tid fd". */
function readingPipes(pid: number): string[] {
  const found: string[] = [];
  for (const { name: tid } of Deno.readDirSync(`/proc/${pid}/task`)) {
    let call: string[];
    try {
      call = Deno.readTextFileSync(`/proc/${pid}/task/${tid}/syscall`)
        .split(" ");
    } catch {
      continue; // ended
    }
    if (Number(call[0]) !== READ) continue;
    const fd = Number(call[1]);
    try {
      if (Deno.readLinkSync(`/proc/${pid}/fd/${fd}`).startsWith("pipe:")) {
        found.push(`${tid} ${fd}`);
      }
    } catch {
      // closed
    }
  }
  return found;
}

Deno.test({
  ...asRoot(
    "the supervisor gives back the thread reading each readiness pipe a process of the daemon's user keeps open",
  ),
  fn: () =>
    withScratch(async (s) => {
      Deno.chmodSync(s.dir, 0o755);
      const r = await cli(HOSTILE, [
        "start",
        ...s.paths,
        "--user",
        "nobody",
        "--attack",
        "hold-ready-pipe",
        "--seconds",
        "0.3",
        "--restart",
        "always",
        "--restart-delay",
        "0.05",
        "--restart-reset",
        "0.2",
        "--max-restarts",
        "1000",
      ]);
      assert.equal(r.code, 0, r.stdout + r.stderr);
      const supervisor = s.track()!;
      const trackHolders = () => {
        for (const m of s.log().matchAll(/held by pid (\d+)/g)) {
          s.track(Number(m[1]));
        }
      };
      try {
        // A read blocked on each pipe for ever held one of the runtime's 32
        // threads per run: past them, the supervisor could wait for
        // nothing (it saw no daemon ready or exit, and status said running).
        await waitFor(
          "restart 4",
          () => {
            trackHolders();
            return /ready again \(pid \d+, restart 4\)/.test(s.log());
          },
          60_000,
        );
        // The current run's reader may be in a read that cannot block.
        const reading = readingPipes(supervisor);
        assert.ok(
          reading.length <= 1,
          `threads of the supervisor in read(2) on a pipe: ${reading}`,
        );
      } finally {
        trackHolders();
      }
      const stop = await cli(HOSTILE, ["stop", ...s.paths]);
      assert.equal(stop.code, 0, stop.stdout + stop.stderr);
      assert.doesNotMatch(stop.stdout, /killed/);
    }),
});
