/**
 * Readiness pipes that a process of the daemon's user keeps open, in a
 * supervised daemon turned hostile after the drop: the supervisor neither
 * leaves a thread reading them nor wakes for them.
 */
import assert from "node:assert/strict";
import {
  asRoot,
  cli,
  ROOT,
  type Scratch,
  waitFor,
  withScratch,
} from "./helpers.ts";

const ATTACK = `${ROOT}tests/fixtures/attack.ts`;

/**
 * `start --user nobody --restart always` of a daemon whose every run keeps
 * its readiness pipe open through a process of its own and exits
 * `exitAfterMs` after it; `more` options for the supervisor.
 *
 * @returns The supervisor's pid, and a function that tracks the holders
 * seen so far (the scratch clean-up kills them).
 */
async function startHolding(
  s: Scratch,
  exitAfterMs: string,
  more: string[] = [],
): Promise<{ supervisor: number; trackHolders: () => void }> {
  Deno.chmodSync(s.dir, 0o755);
  const r = await cli(ATTACK, [
    "start",
    ...s.paths,
    "--user",
    "nobody",
    "--attack",
    "hold-ready-pipe",
    "--exit-after-ms",
    exitAfterMs,
    "--restart",
    "always",
    ...more,
  ]);
  assert.equal(r.code, 0, r.stdout + r.stderr);
  assert.match(s.log(), /ATTACK hold-ready-pipe: readiness pipe held by pid/);
  const supervisor = s.track()!;
  const trackHolders = () => {
    for (const m of s.log().matchAll(/held by pid (\d+)/g)) {
      s.track(Number(m[1]));
    }
  };
  trackHolders();
  return { supervisor, trackHolders };
}

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
      const { supervisor, trackHolders } = await startHolding(s, "300", [
        "--restart-delay",
        "0.05",
        "--restart-reset",
        "0.2",
        "--max-restarts",
        "1000",
      ]);
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
      const stop = await cli(ATTACK, ["stop", ...s.paths]);
      assert.equal(stop.code, 0, stop.stdout + stop.stderr);
      assert.doesNotMatch(stop.stdout, /killed/);
    }),
});

/** The voluntary context switches of each thread of `pid`, by thread id. */
function switches(pid: number): Map<string, number> {
  const by = new Map<string, number>();
  for (const { name: tid } of Deno.readDirSync(`/proc/${pid}/task`)) {
    try {
      const status = Deno.readTextFileSync(`/proc/${pid}/task/${tid}/status`);
      by.set(
        tid,
        Number(status.match(/^voluntary_ctxt_switches:\s*(\d+)/m)![1]),
      );
    } catch {
      // ended
    }
  }
  return by;
}

Deno.test({
  ...asRoot(
    "the supervisor of a ready daemon sleeps while a process of the daemon's user keeps the readiness pipe open",
  ),
  fn: () =>
    withScratch(async (s) => {
      const { supervisor } = await startHolding(s, "600000");
      // Settled: start's requests answered, the daemon up.
      await new Promise((resolve) => setTimeout(resolve, 1000));
      const before = switches(supervisor);
      await new Promise((resolve) => setTimeout(resolve, 5000));
      const after = switches(supervisor);
      let woke = 0;
      for (const [tid, n] of after) woke += n - (before.get(tid) ?? 0);
      // The daemon closes its end once ready: anything after is not its.
      assert.ok(woke <= 2, `the supervisor woke ${woke} times in 5 s`);
      const stop = await cli(ATTACK, ["stop", ...s.paths]);
      assert.equal(stop.code, 0, stop.stdout + stop.stderr);
    }),
});
