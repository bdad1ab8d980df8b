/**
 * A payload turned hostile after the drop, and the files its user owns:
 * nothing it does to them holds root's commands beyond their own timeouts.
 */
import assert from "node:assert/strict";
import { asRoot, cli, ROOT, withScratch } from "./helpers.ts";

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
