/**
 * `start --restart`: the supervisor restarts the daemon with a growing
 * delay, gives up on a crash loop, stops cleanly mid-wait, and its daemon
 * never outlives it.
 */
import assert from "node:assert/strict";
import {
  alive,
  asRoot,
  BEHAVE,
  cli,
  procFds,
  procStat,
  readPid,
  type Scratch,
  waitFor,
  withScratch,
} from "./helpers.ts";
import { describeExit } from "../src/process.ts";
import { restartDelay } from "../src/supervise.ts";

Deno.test("restart delays grow ×1.5 from --restart-delay up to 15 s; exits are described as status or signal", () => {
  assert.deepEqual(
    Array.from({ length: 9 }, (_, n) => restartDelay(1, n)),
    [1, 1.5, 2.25, 3.375, 5.063, 7.594, 11.391, 15, 15],
  );
  assert.equal(restartDelay(0.2, 0), 0.2);
  assert.equal(restartDelay(30, 4), 30, "a longer first delay is kept");
  assert.equal(describeExit({ exited: true, code: 3 }), "status 3");
  assert.equal(
    describeExit({ exited: false, signal: "SIGSEGV", coreDumped: true }),
    "signal SIGSEGV (core dumped)",
  );
});

/** `start` with supervision; returns the daemon's and the supervisor's pids, both tracked. */
async function supervised(
  s: Scratch,
  args: string[],
): Promise<{ pid: number; supervisor: number }> {
  const r = await cli(BEHAVE, ["start", ...s.paths, ...args]);
  assert.equal(r.code, 0, r.stdout + r.stderr + s.log());
  const m = r.stdout.match(/started \(pid (\d+), supervised by pid (\d+)\)/);
  assert.ok(m, `start reported no pids: ${r.stdout}`);
  const [pid, supervisor] = [Number(m[1]), Number(m[2])];
  s.track(supervisor);
  s.track(pid);
  return { pid, supervisor };
}

/** Every daemon the supervisor started, from its log; each is tracked. */
function daemonPids(s: Scratch): number[] {
  const pids = [...s.log().matchAll(/Started the daemon \(pid (\d+)/g)].map((
    m,
  ) => Number(m[1]));
  for (const pid of pids) s.track(pid);
  return pids;
}

/** Milliseconds since the epoch of a log line's timestamp. */
function stamp(line: string): number {
  const m = line.match(/^(\d{4}-\d\d-\d\d) (\d\d:\d\d:\d\d\.\d{3}) \+00:00 /);
  assert.ok(m, `no timestamp: ${line}`);
  return Date.parse(`${m[1]}T${m[2]}Z`);
}

/** `status`, with its exit code. */
function status(s: Scratch) {
  return cli(BEHAVE, ["status", ...s.paths]);
}

/** Wait until the daemon of restart `n` has said it is ready. */
function readyAgain(s: Scratch, n: number, ms?: number): Promise<void> {
  const ready = new RegExp(
    `The daemon is ready again \\(pid \\d+, restart ${n}\\)`,
  );
  return waitFor(`restart ${n} ready`, () => ready.test(s.log()), ms);
}

/** `stop`: exit 0, and no daemon the supervisor ever started left alive. */
async function stopAll(s: Scratch): Promise<string> {
  const stop = await cli(BEHAVE, ["stop", ...s.paths]);
  assert.equal(stop.code, 0, stop.stderr + s.log());
  for (const p of daemonPids(s)) assert.ok(!alive(p), `pid ${p} left running`);
  return stop.stdout;
}

/** The side files a pidfile may have. */
/**
 * What is left beside the log: the pidfile and records, but the exit record,
 * which stays to say how the last run ended (records_test.ts).
 */
function sideFiles(s: Scratch): string[] {
  return [...Deno.readDirSync(s.dir)].map((e) => e.name).filter((n) =>
    n !== "d.log" && n !== "counter" && !n.startsWith("d.log.") &&
    n !== "d.exit"
  ).sort();
}

Deno.test("a daemon that crashes three times is restarted after 0.3, 0.45 and 0.675 s, then runs; status, reload, USR2 and stop go through the supervisor", async () => {
  await withScratch(async (s) => {
    const { pid: first, supervisor } = await supervised(s, [
      "--restart",
      "on-failure",
      "--restart-delay",
      "0.3",
      "--behavior",
      "crash-then-run",
      "--crashes",
      "3",
      "--counter",
      `${s.dir}/counter`,
    ]);
    assert.equal(
      readPid(s.pidfile),
      supervisor,
      "the pidfile names the supervisor",
    );
    await readyAgain(s, 3, 20_000);
    const pids = daemonPids(s);
    assert.equal(pids.length, 4, s.log());
    assert.equal(pids[0], first);
    const pid = pids[3];
    for (const p of pids.slice(0, 3)) assert.ok(!alive(p), `pid ${p} reaped`);

    // The delays, from the log's own timestamps: each restart waits its
    // delay (×1.5 each time) and not much more. The upper bound allows for
    // a late timer on a busy machine; it is there to catch seconds taken
    // for milliseconds or the 15 s cap, as the lower bound catches a short
    // wait.
    const lines = s.log().split("\n");
    for (const [n, delay] of [[1, 0.3], [2, 0.45], [3, 0.675]] as const) {
      const exited = lines.find((l) =>
        l.includes(`: restart ${n} of 10 in a row in ${delay} s`)
      );
      assert.ok(exited, `no restart ${n} announced:\n${s.log()}`);
      assert.match(exited, /exited with status 3 after/);
      const restarted = lines.find((l) =>
        l.includes(
          `Started the daemon (pid ${pids[n]}, restart ${n}, ${n} in a row)`,
        )
      );
      assert.ok(restarted, `no restart ${n} logged`);
      const gap = (stamp(restarted) - stamp(exited)) / 1000;
      assert.ok(
        gap >= delay - 0.005 && gap < delay + 2,
        `restart ${n}: waited ${gap} s, expected ${delay} s`,
      );
    }

    // The kernel's view: the daemon is the supervisor's child, in its
    // session, not a session leader, and holds no pidfile lock.
    const st = procStat(pid);
    assert.equal(st.ppid, supervisor);
    assert.equal(st.session, procStat(supervisor).session);
    assert.notEqual(st.session, pid);
    assert.notEqual(procStat(supervisor).session, supervisor);
    assert.ok(![...procFds(pid).values()].includes(s.pidfile));
    for (const p of [pid, supervisor]) {
      assert.ok(
        ![...procFds(p).values()].some((t) => t.includes("denod-stage")),
        `pid ${p} kept its stage descriptor`,
      );
    }
    assert.ok([...procFds(supervisor).values()].includes(s.pidfile));

    const up = await status(s);
    assert.equal(up.code, 0, up.stdout);
    assert.match(
      up.stdout,
      new RegExp(
        `is running \\(pid ${pid}, up \\d+s; supervised by pid ${supervisor}, 3 restarts, last exit status 3 \\(exited: Deno\\.exit\\(\\) in the payload\\) \\d+s ago;`,
      ),
    );

    // HUP (reload) and USR2 reach the daemon through the supervisor; the
    // supervisor reopens the log too.
    Deno.renameSync(s.logFile, `${s.logFile}.1`);
    const reload = await cli(BEHAVE, ["reload", ...s.paths]);
    assert.equal(reload.code, 0, reload.stderr);
    assert.match(reload.stdout, new RegExp(`reloaded \\(pid ${pid}\\)`));
    assert.match(s.log(), /Reload hook ran/);
    for (const p of [supervisor, pid]) {
      assert.ok(
        ![...procFds(p).values()].includes(`${s.logFile}.1`),
        `pid ${p} still writes to the rotated log`,
      );
    }
    Deno.kill(supervisor, "SIGUSR2");
    await waitFor("USR2 passed on", () => /Got SIGUSR2/.test(s.log()));

    assert.match(
      await stopAll(s),
      new RegExp(`stopped \\(supervisor pid ${supervisor}\\)`),
    );
    assert.ok(!alive(pid) && !alive(supervisor));
    assert.match(s.log(), /behave: Stopped \(SIGTERM, exit 0/);
    assert.deepEqual(sideFiles(s), [], "pidfile and state files removed");
    assert.equal((await status(s)).code, 3);
  });
});

Deno.test("a crash loop ends with the supervisor giving up: status exits 1 and says why, stop clears it", async () => {
  await withScratch(async (s) => {
    const { supervisor } = await supervised(s, [
      "--restart",
      "always",
      "--restart-delay",
      "0.1",
      "--max-restarts",
      "2",
      "--behavior",
      "exit-after-ready",
    ]);
    await waitFor("the supervisor gives up", () => !alive(supervisor), 20_000);
    const pids = daemonPids(s);
    assert.equal(pids.length, 3, "the first run and two restarts");
    for (const p of pids) assert.ok(!alive(p), `pid ${p} left running`);
    assert.match(
      s.log(),
      /exited with status 5 after .*: gave up after 2 restarts in a row \(--max-restarts 2\)/,
    );
    assert.match(s.log(), /Supervisor exits \(1\)/);

    const st = await status(s);
    assert.equal(st.code, 1, st.stdout);
    assert.match(
      st.stdout,
      /is not running: its supervisor gave up after 2 restarts in a row .* the last ended with status 5, \d+s ago \(pidfile .* remains/,
    );
    assert.equal(readPid(s.pidfile), supervisor);

    assert.match(
      await stopAll(s),
      /not running \(cleared the record of its last run: exited \(Deno\.exit\(\) in the payload\)/,
    );
    assert.deepEqual(sideFiles(s), []);
    assert.equal((await status(s)).code, 3);
  });
});

Deno.test("a daemon that stayed up --restart-reset starts the count afresh: it is never given up on", async () => {
  await withScratch(async (s) => {
    const { supervisor } = await supervised(s, [
      "--restart",
      "on-failure",
      "--restart-delay",
      "0.1",
      "--restart-reset",
      "0.5",
      "--max-restarts",
      "1",
      "--behavior",
      "crash-late",
    ]);
    await readyAgain(s, 3, 20_000);
    // Each run was up 0.7 s, past the 0.5 s reset: every restart is the
    // first in a row, and the first delay again.
    const restarts = s.log().match(/: restart \d+ of 1 in a row in [\d.]+ s/g);
    assert.deepEqual(
      restarts,
      Array(3).fill(": restart 1 of 1 in a row in 0.1 s"),
    );
    assert.ok(alive(supervisor), "not given up");
    assert.doesNotMatch(s.log(), /gave up/);
    await stopAll(s);
  });
});

Deno.test("SIGINT to the supervisor stops its daemon, killing it after the stop timeout when it hangs, then the supervisor", async () => {
  await withScratch(async (s) => {
    const { pid, supervisor } = await supervised(s, [
      "--restart",
      "always",
      "--stop-timeout",
      "1",
      "--behavior",
      "stuck-stop",
    ]);
    Deno.kill(supervisor, "SIGINT");
    await waitFor("both gone", () => !alive(pid) && !alive(supervisor));
    const log = s.log();
    assert.match(log, /behave·supervisor: Stopping on SIGINT/);
    assert.match(log, /Stuck stop begins/);
    assert.match(
      log,
      new RegExp(
        `The daemon \\(pid ${pid}\\) did not stop within 3 s: killing it`,
      ),
    );
    assert.match(log, /exited with signal SIGKILL/);
    assert.match(log, /Supervisor exits \(0\)/);
    assert.equal(daemonPids(s).length, 1, "not restarted after a stop");
    assert.deepEqual(sideFiles(s), []);
  });
});

Deno.test("a restarted daemon that is not ready within --ready-timeout is stopped and counts as a failure, even with exit status 0", async () => {
  await withScratch(async (s) => {
    const { supervisor } = await supervised(s, [
      "--restart",
      "on-failure",
      "--restart-delay",
      "0.1",
      "--max-restarts",
      "1",
      "--ready-timeout",
      "1",
      "--behavior",
      "ready-once",
      "--counter",
      `${s.dir}/counter`,
    ]);
    await waitFor("the supervisor gives up", () => !alive(supervisor), 20_000);
    const log = s.log();
    assert.match(log, /The daemon was not ready within 1 s: stopping it/);
    assert.match(
      log,
      /exited with status 0 after [\d.]+ s before it was ready \(The daemon was not ready within 1 s\): gave up after 1 restart in a row/,
    );
    for (const p of daemonPids(s)) assert.ok(!alive(p));
    assert.equal((await status(s)).code, 1);
  });
});

Deno.test("stop during the wait before a restart ends the supervisor at once, and nothing is restarted", async () => {
  await withScratch(async (s) => {
    const { pid, supervisor } = await supervised(s, [
      "--restart",
      "on-failure",
      "--restart-delay",
      "30",
      "--behavior",
      "exit-after-ready",
    ]);
    await waitFor("the daemon exits", () => !alive(pid));
    const waiting = await status(s);
    assert.equal(waiting.code, 3, waiting.stdout);
    assert.match(
      waiting.stdout,
      new RegExp(
        `is not running: restarting in \\d+s \\(supervisor pid ${supervisor}, 1 restart, last exit status 5`,
      ),
    );
    const reload = await cli(BEHAVE, ["reload", ...s.paths]);
    assert.equal(reload.code, 7, reload.stderr);
    assert.match(reload.stderr, /supervisor is waiting to restart it/);

    await stopAll(s);
    assert.ok(!alive(supervisor), "the supervisor is gone when stop returns");
    assert.match(s.log(), /Stopping on SIGTERM\n.*Supervisor exits \(0\)/);
    assert.equal(daemonPids(s).length, 1, "no restart after stop");
    assert.deepEqual(sideFiles(s), []);
  });
});

Deno.test({
  ...asRoot(
    "kill -9 of the supervisor: its daemon (running as nobody) notices and stops gracefully; start takes over",
  ),
  fn: () =>
    withScratch(async (s) => {
      Deno.chmodSync(s.dir, 0o755);
      const { pid, supervisor } = await supervised(s, [
        "--restart",
        "always",
        "--user",
        "nobody",
      ]);
      Deno.kill(supervisor, "SIGKILL");
      await waitFor("the orphaned daemon stops", () => !alive(pid));
      assert.match(
        s.log(),
        new RegExp(`The supervisor \\(pid ${supervisor}\\) is gone`),
      );
      assert.match(s.log(), /Stopped \(the supervisor's exit, exit 0/);

      const st = await status(s);
      assert.equal(st.code, 1, "dead, pidfile left");
      const again = await supervised(s, [
        "--restart",
        "always",
        "--user",
        "nobody",
      ]);
      assert.notEqual(again.supervisor, supervisor);
      await stopAll(s);
    }),
});

Deno.test("a daemon that exits 0 is restarted by --restart always, not by on-failure; one killed by a signal is restarted by on-failure", async () => {
  await withScratch(async (s) => {
    const { supervisor } = await supervised(s, [
      "--restart",
      "on-failure",
      "--behavior",
      "return-after-ready",
    ]);
    await waitFor("the supervisor ends", () => !alive(supervisor));
    assert.match(
      s.log(),
      /exited with status 0 after .*: done \(--restart on-failure\)/,
    );
    assert.equal(daemonPids(s).length, 1);
    assert.deepEqual(sideFiles(s), [], "a finished service leaves nothing");
    // Done, not dead: it returned with status 0.
    const st = await status(s);
    assert.equal(st.code, 3, st.stdout);
    assert.match(st.stdout, /is not running \(returned \(main returned/);
  });
  await withScratch(async (s) => {
    const { supervisor } = await supervised(s, [
      "--restart",
      "always",
      "--restart-delay",
      "0.1",
      "--behavior",
      "return-after-ready",
    ]);
    await readyAgain(s, 1);
    assert.match(s.log(), /exited with status 0 after .*: restart 1 of 10/);
    assert.ok(alive(supervisor));
    await stopAll(s);
  });
  await withScratch(async (s) => {
    // on-failure: a daemon killed by a signal failed.
    const { pid, supervisor } = await supervised(s, [
      "--restart",
      "on-failure",
      "--restart-delay",
      "0.1",
    ]);
    Deno.kill(pid, "SIGKILL");
    await readyAgain(s, 1);
    assert.match(
      s.log(),
      new RegExp(
        `The daemon \\(pid ${pid}\\) exited with signal SIGKILL after`,
      ),
    );
    assert.ok(alive(supervisor));
    await stopAll(s);
  });
});

Deno.test("under --restart, start still reports the first daemon's own start-up error and leaves nothing; --restart is refused where it cannot work", async () => {
  await withScratch(async (s) => {
    const r = await cli(BEHAVE, [
      "start",
      ...s.paths,
      "--restart",
      "always",
      "--behavior",
      "throw-before-ready",
    ]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /behave: Cannot open the frobnicator/);
    for (const p of daemonPids(s)) assert.ok(!alive(p));
    assert.equal(daemonPids(s).length, 1, "not restarted");
    assert.match(s.log(), /not restarting a daemon that never started/);
    assert.deepEqual(sideFiles(s), []);

    const run = await cli(BEHAVE, ["run", "--restart", "always"]);
    assert.equal(run.code, 2);
    assert.match(run.stderr, /--restart works with start and restart/);

    const managed = await cli(
      BEHAVE,
      ["start", ...s.paths, "--restart", "on-failure"],
      { env: { NOTIFY_SOCKET: `${s.dir}/notify` } },
    );
    assert.equal(managed.code, 2);
    assert.match(managed.stderr, /NOTIFY_SOCKET is set/);
    assert.deepEqual(sideFiles(s), [], "nothing started");
  });
});

Deno.test("the supervised payload's children inherit no descriptor from the supervisor or the stages", async () => {
  await withScratch(async (s) => {
    const report = `${s.dir}/report`;
    await supervised(s, [
      "--restart",
      "on-failure",
      "--behavior",
      "spawn-child",
      "--report",
      report,
    ]);
    const text = Deno.readTextFileSync(report);
    const [env, fds] = text.split("FDS\n");
    // `ls` itself holds one more descriptor for the directory it lists.
    assert.deepEqual(fds.trim().split("\n").map(Number).filter((n) => n > 2), [
      3,
    ]);
    const names = env.split("\n").map((l) => l.split("=")[0]);
    assert.ok(
      !names.some((n) => /denod|^NOTIFY_SOCKET$|^WATCHDOG_|^LISTEN_/i.test(n)),
      env,
    );
    await stopAll(s);
  });
});

Deno.test("HUP to the supervisor while no daemon runs only reopens the log; while a restarted daemon starts it is owed to it; TERM then stops that daemon", async () => {
  await withScratch(async (s) => {
    const { supervisor } = await supervised(s, [
      "--restart",
      "always",
      "--restart-delay",
      "3",
      "--behavior",
      "ready-once",
      "--counter",
      `${s.dir}/counter`,
    ]);
    await waitFor(
      "the wait before restart 1",
      () => /restart 1 of 10 in a row/.test(s.log()),
    );
    Deno.kill(supervisor, "SIGHUP");
    await waitFor(
      "the reload noted",
      () =>
        /Reload requested while no daemon runs: the next one starts with the current configuration/
          .test(s.log()),
    );
    await waitFor("restart 1", () => daemonPids(s).length === 2, 5_000);
    const second = daemonPids(s)[1];
    Deno.kill(supervisor, "SIGHUP");
    await waitFor(
      "the reload owed",
      () =>
        s.log().includes(
          `Reload requested while the daemon (pid ${second}) starts: passed on once it is ready`,
        ),
    );
    Deno.kill(supervisor, "SIGTERM");
    await waitFor("both gone", () => !alive(second) && !alive(supervisor));
    const log = s.log();
    assert.match(log, /supervisor: Stopping on SIGTERM/);
    assert.match(
      log,
      new RegExp(
        `The daemon \\(pid ${second}\\) exited with (status 0|signal SIGTERM) after [\\d.]+ s before it was ready( \\(.*\\))?\n`,
      ),
    );
    assert.match(log, /Supervisor exits \(0\)/);
    assert.equal(daemonPids(s).length, 2, "not restarted after a stop");
    assert.deepEqual(sideFiles(s), []);
  });
});

Deno.test("under --restart, a first daemon whose pidfile is removed before it is ready is reported by start, stopped and not restarted", async () => {
  await withScratch(async (s) => {
    const r = await cli(BEHAVE, [
      "start",
      ...s.paths,
      "--restart",
      "always",
      "--behavior",
      "lose-pidfile",
    ]);
    assert.equal(r.code, 1, r.stdout);
    assert.match(
      r.stderr,
      /Lost the pidfile: ".*d\.pid" was removed or replaced/,
    );
    const [pid] = daemonPids(s);
    await waitFor("the daemon stops", () => !alive(pid));
    await waitFor(
      "the supervisor exits",
      () => /Supervisor exits \(0\)/.test(s.log()),
    );
    // It stops on its own: a TERM from start's clean-up is a second one.
    assert.doesNotMatch(s.log(), /supervisor: Stopping on/);
    assert.equal(daemonPids(s).length, 1, "not restarted");
    assert.deepEqual(sideFiles(s), []);
  });
});
