/**
 * A lease the daemon's user takes on its log file (it owns the file once a
 * `start --user` handed it over): root's commands do not wait for it
 * beyond their own timeouts, say what refuses them, and `logs -f` follows
 * on once the lease is given up.
 */
import assert from "node:assert/strict";
import {
  asNobodyLine,
  asRoot,
  BEHAVE,
  cli,
  denoLine,
  nobodyHome,
  ROOT,
  sh,
  waitFor,
  withScratch,
} from "./helpers.ts";

const ATTACK = `${ROOT}tests/fixtures/attack.ts`;
const LEASE_SWAP = `${ROOT}tests/fixtures/lease_swap.ts`;

Deno.test({
  ...asRoot(
    "`start` is not held by a lease the daemon's user takes on its log file",
  ),
  fn: () =>
    withScratch(async (s) => {
      Deno.chmodSync(s.dir, 0o755);
      const began = performance.now();
      const r = await cli(ATTACK, [
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
    "`start` says that another process holds a lease on the log file the daemon's user owns",
  ),
  fn: () =>
    withScratch(async (s) => {
      const home = nobodyHome(s);
      // As after a start --user nobody: the log file is handed to it.
      Deno.writeTextFileSync(s.logFile, "");
      Deno.chownSync(s.logFile, 65534, 65534);
      const holder = new Deno.Command("/bin/bash", {
        args: [
          "-c",
          `exec env ${
            asNobodyLine(
              home,
              denoLine(LEASE_SWAP, [s.logFile, "60", "in-place"]),
            )
          }`,
        ],
        stdin: "null",
        stdout: "piped",
        stderr: "inherit",
      }).spawn();
      s.track(holder.pid);
      const said = holder.stdout.pipeThrough(new TextDecoderStream())
        .getReader();
      try {
        assert.match((await said.read()).value ?? "", /leased/);
        // Taken again each time an open breaks it: not a passing refusal.
        for (let i = 0; i < 2; i++) {
          const r = await cli(BEHAVE, [
            "start",
            ...s.paths,
            "--user",
            "nobody",
          ]);
          assert.equal(r.code, 1, r.stdout + r.stderr);
          assert.match(
            r.stderr,
            /^behave: Cannot open log file ".*": another process holds a lease on it/m,
          );
        }
      } finally {
        holder.kill("SIGKILL");
        await holder.status;
        await said.cancel();
      }
    }),
});

Deno.test({
  ...asRoot(
    "`logs -f` follows on past a lease the daemon's user holds on the log that replaced the one it followed",
  ),
  fn: () =>
    withScratch(async (s) => {
      const home = nobodyHome(s);
      const log = `${home}/x.log`;
      Deno.writeTextFileSync(log, "one\n");
      Deno.chownSync(log, 65534, 65534);
      const child = new Deno.Command(Deno.execPath(), {
        args: [
          "run",
          "-A",
          BEHAVE,
          "logs",
          "-f",
          "--log-file",
          log,
          "--user",
          "nobody",
          "--pidfile",
          s.pidfile,
        ],
        stdin: "null",
        stdout: "piped",
        stderr: "piped",
      }).spawn();
      s.track(child.pid);
      let out = "";
      let err = "";
      const reading = Promise.all([
        (async () => {
          for await (
            const c of child.stdout.pipeThrough(new TextDecoderStream())
          ) out += c;
        })(),
        (async () => {
          for await (
            const c of child.stderr.pipeThrough(new TextDecoderStream())
          ) err += c;
        })(),
      ]);
      let ended: number | null = null;
      void child.status.then((st) => ended = st.code);
      await waitFor("logs -f showing the first line", () => out === "one\n");
      // The lease is held for 3 s, far less than the kernel's 45 s.
      const swap = await sh(
        asNobodyLine(home, denoLine(LEASE_SWAP, [log, "3"])),
        { timeout: 60 },
      );
      assert.equal(swap.code, 0, swap.stdout + swap.stderr);
      assert.match(swap.stdout, /leased/);
      // The holder gave the lease up: the new file can be opened again.
      await waitFor(
        "logs -f showing the new file",
        () => ended !== null || out.includes("two\n"),
      );
      assert.equal(ended, null, `logs -f ended (${ended}): ${err}`);
      assert.equal(out, "one\ntwo\n", err);
      assert.match(err, /is leased by another process: waiting for it/);
      child.kill("SIGTERM");
      const { code } = await child.status;
      await reading;
      assert.equal(code, 0, err);
    }),
});
