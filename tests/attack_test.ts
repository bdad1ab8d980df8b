/**
 * Proofs of concept against the trust boundaries, as root: a payload
 * compromised after the drop to `nobody` (tests/fixtures/attack.ts) steers
 * what root's commands read or signal. Each test fails while the hole is
 * open.
 */
import assert from "node:assert/strict";
import { asRoot, cli, started, withScratch } from "./helpers.ts";

const ATTACK = new URL("./fixtures/attack.ts", import.meta.url).pathname;

/** Options for the attack fixture: run as `nobody`, doing `attack`. */
function hostile(attack: string, ...more: string[]): string[] {
  return ["--user", "nobody", "--attack", attack, ...more];
}

Deno.test(
  asRoot(
    "`status` never shows a file the daemon's user cannot read, named by swapping its state memfd's descriptor",
  ),
  async () => {
    await withScratch(async (s) => {
      // nobody may search the directory, not read the file.
      Deno.chmodSync(s.dir, 0o755);
      const secret = `${s.dir}/secret.json`;
      Deno.writeTextFileSync(secret, "{}", { mode: 0o600 });
      const pid = await started(s, ATTACK, [
        ...hostile("memfd-race", "--target", secret),
        "--stop-timeout",
        "1",
      ]);
      // A root-only file that happens to be valid state: what root reads
      // of it reaches the terminal.
      Deno.writeTextFileSync(
        secret,
        JSON.stringify({
          pid,
          reloadsRequested: 0,
          reloadsDone: 0,
          lastReloadError: null,
          logsTo: "ROOT-ONLY-SECRET",
        }),
      );
      const seen: string[] = [];
      for (let i = 0; i < 40; i++) {
        const r = await cli(ATTACK, ["status", ...s.paths]);
        seen.push(r.stdout);
      }
      assert.ok(
        !seen.some((out) => out.includes("ROOT-ONLY-SECRET")),
        `root read the secret: ${
          seen.filter((o) => o.includes("SECRET")).length
        } of 40`,
      );
    });
  },
);

Deno.test(
  asRoot(
    "`start` never signals a process the payload names on the readiness pipe",
  ),
  async () => {
    await withScratch(async (s) => {
      const r = await cli(ATTACK, [
        "start",
        ...s.paths,
        ...hostile("pid-flood", "--stop-timeout", "2"),
      ]);
      s.track();
      // Reported as a start-up failure, not killed by its own SIGTERM (143).
      assert.equal(r.code, 1, `exit ${r.code}: ${r.stdout}${r.stderr}`);
      assert.match(r.stderr, /hostile says no/);
    });
  },
);

Deno.test(
  asRoot(
    "`start` reports the pid the session leader recorded, not one the payload writes on the readiness pipe",
  ),
  async () => {
    await withScratch(async (s) => {
      // nobody must reach its pidfile to say it is ready.
      Deno.chmodSync(s.dir, 0o755);
      const r = await cli(ATTACK, [
        "start",
        ...s.paths,
        ...hostile("ready-lie"),
      ]);
      const pid = s.track()!;
      assert.equal(r.code, 0, r.stdout + r.stderr);
      assert.match(r.stdout, new RegExp(`started \\(pid ${pid}\\)`));
      const stop = await cli(ATTACK, ["stop", ...s.paths]);
      assert.equal(stop.code, 0, stop.stdout + stop.stderr + s.log());
    });
  },
);
