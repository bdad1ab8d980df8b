/**
 * Review of round 7: what the daemon's user can still do, through the files
 * it owns, to root's commands.
 */
import assert from "node:assert/strict";
import {
  alive,
  asNobodyLine,
  asRoot,
  BEHAVE,
  cli,
  denoLine,
  nobodyHome,
  procEnviron,
  ROOT,
  sh,
  waitFor,
  withScratch,
} from "./helpers.ts";

const HOSTILE = `${ROOT}tests/fixtures/hostile_r7.ts`;
const LEASE_SWAP = `${ROOT}tests/fixtures/lease_swap.ts`;

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
    "`start --user` under deno run leaves no private DENO_DIR once it reported the daemon ready, even ready in prepare",
  ),
  fn: () =>
    withScratch(async (s) => {
      Deno.chmodSync(s.dir, 0o755);
      const r = await cli(BEHAVE, [
        "start",
        ...s.paths,
        "--user",
        "nobody",
        "--behavior",
        "ready-in-prepare",
      ]);
      assert.equal(r.code, 0, r.stdout + r.stderr);
      const pid = s.track()!;
      const dir = procEnviron(pid).find((e) =>
        e.startsWith("DENO_DIR=/run/denod-deno-")
      )?.slice("DENO_DIR=".length);
      assert.ok(dir !== undefined, "no private DENO_DIR");
      // Nobody waits for the daemon any more: killed now (SIGKILL, the OOM
      // killer), it would leave the directory in /run for ever.
      const left = (() => {
        try {
          Deno.statSync(dir);
          return true;
        } catch {
          return false;
        }
      })();
      Deno.kill(pid, "SIGKILL");
      if (left) {
        await waitFor("the daemon's end", () => !alive(pid));
        Deno.removeSync(dir, { recursive: true });
      }
      assert.ok(!left, `${dir} is there after start said the daemon started`);
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
      Deno.chmodSync(s.dir, 0o755);
      const r = await cli(HOSTILE, [
        "start",
        ...s.paths,
        "--user",
        "nobody",
        "--attack",
        "hold-ready-pipe",
        "--seconds",
        "600",
        "--restart",
        "always",
      ]);
      assert.equal(r.code, 0, r.stdout + r.stderr);
      const supervisor = s.track()!;
      for (const m of s.log().matchAll(/held by pid (\d+)/g)) {
        s.track(Number(m[1]));
      }
      // Settled: start's requests answered, the daemon up.
      await new Promise((resolve) => setTimeout(resolve, 1000));
      const before = switches(supervisor);
      await new Promise((resolve) => setTimeout(resolve, 5000));
      const after = switches(supervisor);
      let woke = 0;
      for (const [tid, n] of after) woke += n - (before.get(tid) ?? 0);
      // The daemon closes its end once ready: anything after is not its.
      assert.ok(woke <= 2, `the supervisor woke ${woke} times in 5 s`);
      const stop = await cli(HOSTILE, ["stop", ...s.paths]);
      assert.equal(stop.code, 0, stop.stdout + stop.stderr);
    }),
});
