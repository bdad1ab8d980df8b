/**
 * Proofs of concept against the trust boundaries, as root: a payload
 * compromised after the drop to `nobody` (tests/fixtures/attack.ts) steers
 * what root's commands read or signal. Each test fails while the hole is
 * open.
 */
import assert from "node:assert/strict";
import {
  asNobodyLine,
  asRoot,
  cli,
  nobodyHome,
  sh,
  shq,
  started,
  waitFor,
  withScratch,
} from "./helpers.ts";

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

Deno.test(
  asRoot(
    "a payload turned hostile cannot lease its exit record to block root's reads of it, nor open it to other users",
  ),
  async () => {
    await withScratch(async (s) => {
      Deno.chmodSync(s.dir, 0o755);
      await started(s, ATTACK, [
        ...hostile("exit-lease"),
        "--stop-timeout",
        "1",
      ]);
      await waitFor("the attack tried", () => s.log().includes("done"));
      assert.match(s.log(), /no chmod/);
      assert.match(s.log(), /no lease/);
      const record = `${s.dir}/d.exit`;
      // Any reader root runs (cat, a backup, a monitor) waits out a lease:
      // 45 seconds by default.
      const cat = await sh(`timeout 5 cat ${shq(record)}`);
      assert.equal(cat.code, 0, `cat blocked: ${s.log()}`);
      assert.equal(
        Deno.statSync(record).mode! & 0o022,
        0,
        `writable by others: ${s.log()}`,
      );
      const stop = await cli(ATTACK, ["stop", ...s.paths]);
      assert.equal(stop.code, 0, stop.stdout + stop.stderr);
    });
  },
);

Deno.test(
  asRoot(
    "`status` ignores an exit record another user put beside a pidfile in a sticky directory",
  ),
  async () => {
    await withScratch(async (s) => {
      const lie = JSON.stringify({
        pid: 0,
        how: "failed",
        detail: "FORGED by another user",
        code: 1,
        at: Date.now(),
      });
      const home = nobodyHome(s);
      // A shared directory like /tmp: anyone may create a file in it.
      Deno.chmodSync(s.dir, 0o1777);
      const w = await sh(
        asNobodyLine(
          home,
          `sh -c ${shq(`printf %s ${shq(lie)} > ${s.dir}/d.exit`)}`,
        ),
      );
      assert.equal(w.code, 0, w.stderr);
      const st = await cli(ATTACK, ["status", ...s.paths]);
      assert.doesNotMatch(st.stdout, /FORGED/);
      assert.equal(st.code, 3, st.stdout + st.stderr);
    });
  },
);

Deno.test(
  asRoot(
    "a payload turned hostile cannot end its supervisor by making reads of the exit record's shared descriptor fail",
  ),
  async () => {
    await withScratch(async (s) => {
      Deno.chmodSync(s.dir, 0o755);
      const r = await cli(ATTACK, [
        "start",
        ...s.paths,
        ...hostile("exit-direct"),
        "--restart",
        "always",
        "--restart-delay",
        "0.2",
        "--stop-timeout",
        "1",
      ]);
      s.track();
      assert.equal(r.code, 0, r.stdout + r.stderr);
      // Each daemon sets O_DIRECT on the description and exits with 3.
      await waitFor(
        "a restart",
        () => (s.log().match(/Started the daemon/g) ?? []).length >= 2,
      ).catch((err) => {
        throw new Error(`${err.message}: ${s.log()}`);
      });
      assert.doesNotMatch(s.log(), /The supervisor failed/);
      const stop = await cli(ATTACK, ["stop", ...s.paths]);
      assert.equal(stop.code, 0, stop.stdout + stop.stderr);
    });
  },
);
