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

Deno.test({
  ...asRoot(
    "the supervisor keeps restarting a daemon whose processes keep each of its readiness pipes open",
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
      s.track();
      // Past the 32 threads of the runtime's pool, where a read of each
      // pipe, held for ever, left none for the supervisor's next wait.
      const target = 36;
      const restarts = () =>
        Math.max(
          0,
          ...[...s.log().matchAll(/ready again \(pid \d+, restart (\d+)\)/g)]
            .map((m) => Number(m[1])),
        );
      const trackHolders = () => {
        for (const m of s.log().matchAll(/held by pid (\d+)/g)) {
          s.track(Number(m[1]));
        }
      };
      try {
        await waitFor(
          `restart ${target}`,
          () => {
            trackHolders();
            return restarts() >= target;
          },
          120_000,
          200,
        );
      } catch (err) {
        throw new Error(
          `${
            (err as Error).message
          }: the supervisor stopped at restart ${restarts()}; log tail:\n${
            s.log().split("\n").slice(-6).join("\n")
          }`,
        );
      } finally {
        trackHolders();
      }
      const stop = await cli(HOSTILE, ["stop", ...s.paths]);
      assert.equal(stop.code, 0, stop.stdout + stop.stderr);
      assert.doesNotMatch(stop.stdout, /killed/);
    }),
});
