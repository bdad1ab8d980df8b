/**
 * What a daemon's records remember: the launch record (`restart` and `stop`
 * apply the options it was started with), the exit record (how the last
 * run ended), `status --json`, and instances.
 */
import assert from "node:assert/strict";
import {
  alive,
  asNobodyLine,
  asRoot,
  BEHAVE,
  cli,
  denoLine,
  EXAMPLE,
  listeningPort,
  nobodyHome,
  readPid,
  type Scratch,
  sh,
  started,
  victim,
  waitFor,
  withScratch,
} from "./helpers.ts";

/** The launch record beside the scratch pidfile. */
function launch(s: Scratch): { options: Record<string, unknown> } {
  return JSON.parse(Deno.readTextFileSync(`${s.dir}/d.launch`));
}

/** `start` under a supervisor; both pids are tracked for clean-up. */
async function supervisedStart(
  s: Scratch,
  entry: string,
  args: string[],
  cwd?: string,
): Promise<{ pid: number; supervisor: number }> {
  const r = await cli(entry, ["start", ...args], { cwd });
  assert.equal(r.code, 0, r.stdout + r.stderr);
  const m = r.stdout.match(/started \(pid (\d+), supervised by pid (\d+)\)/);
  assert.ok(m, r.stdout);
  return { pid: s.track(Number(m[1]))!, supervisor: s.track(Number(m[2]))! };
}

Deno.test("restart without options restarts with the recorded ones; those given override one by one", async () => {
  await withScratch(async (s) => {
    // Relative paths, from the scratch directory: recorded absolute.
    const first = await supervisedStart(s, EXAMPLE, [
      "--pidfile",
      "d.pid",
      "--log-file",
      "d.log",
      "--port",
      "0",
      "--restart",
      "on-failure",
      "--log-level",
      "debug",
    ], s.dir);
    assert.deepEqual(launch(s).options, {
      pidfile: s.pidfile,
      "log-file": s.logFile,
      port: "0",
      restart: "on-failure",
      "log-level": "debug",
    });
    const r = await cli(EXAMPLE, [
      "restart",
      "--pidfile",
      s.pidfile,
      "--log-level",
      "warning",
    ]);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    // Still supervised, still logging to the recorded file.
    const m = r.stdout.match(/started \(pid (\d+), supervised by pid (\d+)\)/);
    assert.ok(m, r.stdout);
    s.track(Number(m[1]));
    s.track(Number(m[2]));
    assert.ok(!alive(first.pid) && !alive(first.supervisor));
    assert.equal(launch(s).options["log-level"], "warning");
    assert.equal(launch(s).options.restart, "on-failure");
    const st = await cli(EXAMPLE, ["status", "--pidfile", s.pidfile]);
    assert.equal(st.code, 0, st.stdout);
    assert.match(st.stdout, new RegExp(`logs to ${s.logFile}`));
    assert.match(st.stdout, /supervised by pid/);
    const stop = await cli(EXAMPLE, ["stop", "--pidfile", s.pidfile]);
    assert.equal(stop.code, 0, stop.stderr);
  });
});

Deno.test("stop without --stop-timeout waits the daemon's own, as recorded at start", async () => {
  await withScratch(async (s) => {
    const r = await cli(BEHAVE, [
      "start",
      ...s.paths,
      "--behavior",
      "stuck-stop",
      "--stop-timeout",
      "1",
    ]);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    const pid = s.track()!;
    const began = performance.now();
    const stop = await cli(BEHAVE, ["stop", "--pidfile", s.pidfile]);
    const took = performance.now() - began;
    assert.equal(stop.code, 0, stop.stderr);
    assert.match(stop.stdout, /killed after --stop-timeout/);
    // The default is 10 s: well under it means the recorded 1 s applied.
    assert.ok(took < 8000, `stop took ${took} ms`);
    await waitFor("daemon gone", () => !alive(pid));
  });
});

Deno.test("the launch record is root's (or the caller's), mode 0644, and goes with the daemon", async () => {
  await withScratch(async (s) => {
    const r = await cli(EXAMPLE, ["start", ...s.paths, "--port", "0"]);
    assert.equal(r.code, 0, r.stderr);
    s.track();
    const st = Deno.statSync(`${s.dir}/d.launch`);
    assert.equal(st.uid, Deno.uid());
    assert.equal(st.mode! & 0o777, 0o644);
    assert.ok(listeningPort(s.log()) > 0);
    const stop = await cli(EXAMPLE, ["stop", "--pidfile", s.pidfile]);
    assert.equal(stop.code, 0);
    assert.throws(() => Deno.statSync(`${s.dir}/d.launch`));
  });
});

/** `status --json` of the scratch daemon: its code and report. */
async function statusJson(
  s: Scratch,
  entry = BEHAVE,
): Promise<{ code: number; report: Record<string, unknown> }> {
  const r = await cli(entry, ["status", "--json", "--pidfile", s.pidfile]);
  return { code: r.code, report: JSON.parse(r.stdout) };
}

/** The keys of a status report, in their documented order. */
const REPORT_KEYS = [
  "name",
  "instance",
  "state",
  "pid",
  "supervisorPid",
  "uptime",
  "restarts",
  "lastExit",
  "pidfile",
  "logsTo",
  "options",
];

Deno.test("a daemon that dies of an uncaught error: status exits 1 and says how and when; stop clears it", async () => {
  await withScratch(async (s) => {
    const pid = await started(s, BEHAVE, ["--behavior", "throw-after-ready"]);
    await waitFor("daemon exits", () => !alive(pid));
    const st = await cli(BEHAVE, ["status", "--pidfile", s.pidfile]);
    assert.equal(st.code, 1, st.stdout);
    assert.match(
      st.stdout,
      /^behave is not running: it failed \(uncaught error: Boom after ready\) \d+s ago/,
    );
    const json = await statusJson(s);
    assert.equal(json.code, 1);
    assert.deepEqual(Object.keys(json.report), REPORT_KEYS);
    assert.equal(json.report.state, "dead");
    const last = json.report.lastExit as Record<string, unknown>;
    assert.equal(last.how, "failed");
    assert.equal(last.detail, "uncaught error: Boom after ready");
    assert.equal(last.code, 1);
    assert.ok(Math.abs(Number(last.at) - Date.now()) < 60_000);

    const stop = await cli(BEHAVE, ["stop", "--pidfile", s.pidfile]);
    assert.equal(stop.code, 0);
    assert.match(stop.stdout, /cleared the record of its last run: failed/);
    const after = await cli(BEHAVE, ["status", "--pidfile", s.pidfile]);
    assert.equal(after.code, 3);
    assert.equal(after.stdout, "behave is not running\n");
  });
});

Deno.test("a daemon killed by SIGKILL: status exits 1, says it ended without a word; start clears it", async () => {
  await withScratch(async (s) => {
    const pid = await started(s, BEHAVE, []);
    Deno.kill(pid, "SIGKILL");
    await waitFor("daemon gone", () => !alive(pid));
    const st = await cli(BEHAVE, ["status", "--pidfile", s.pidfile]);
    assert.equal(st.code, 1);
    assert.match(
      st.stdout,
      new RegExp(
        `pidfile .* remains \\(pid ${pid}\\): it ended without saying how \\(killed by SIGKILL, the OOM killer, or a crash\\)`,
      ),
    );
    assert.equal((await statusJson(s)).report.state, "dead");
    await started(s, BEHAVE, []);
    const json = await statusJson(s);
    assert.equal(json.code, 0);
    assert.equal(json.report.state, "running");
    assert.equal(json.report.lastExit, null);
    assert.equal((await cli(BEHAVE, ["stop", ...s.paths])).code, 0);
  });
});

Deno.test("a daemon stopped as asked: status exits 3 and says by what", async () => {
  await withScratch(async (s) => {
    const pid = await started(s, BEHAVE, []);
    Deno.kill(pid, "SIGINT");
    await waitFor("daemon gone", () => !alive(pid));
    const st = await cli(BEHAVE, ["status", "--pidfile", s.pidfile]);
    assert.equal(st.code, 3, st.stdout);
    assert.match(st.stdout, /not running \(stopped \(SIGINT\) \d+s ago\)/);
    const json = await statusJson(s);
    assert.equal(json.report.state, "stopped");
    assert.deepEqual(
      { ...json.report.lastExit as object, at: 0 },
      { how: "stopped", detail: "SIGINT", code: 0, at: 0 },
    );
  });
});

Deno.test("supervised: status --json shows pids, restarts and how the last run ended; a daemon killed by a signal is recorded by its supervisor", async () => {
  await withScratch(async (s) => {
    const first = await supervisedStart(s, BEHAVE, [
      ...s.paths,
      "--restart",
      "on-failure",
      "--restart-delay",
      "0.1",
    ]);
    Deno.kill(first.pid, "SIGKILL");
    let report: Record<string, unknown> = {};
    await waitFor("restarted", async () => {
      report = (await statusJson(s)).report;
      return report.state === "running" && report.pid !== first.pid;
    });
    s.track(Number(report.pid));
    assert.equal(report.supervisorPid, first.supervisor);
    assert.equal(report.restarts, 1);
    assert.deepEqual(
      { ...report.lastExit as object, at: 0 },
      { how: "killed", detail: "signal SIGKILL", code: null, at: 0 },
    );
    assert.equal(report.logsTo, s.logFile);
    assert.deepEqual(Object.keys(report), REPORT_KEYS);
    const st = await cli(BEHAVE, ["status", "--pidfile", s.pidfile]);
    assert.match(st.stdout, /last exit signal SIGKILL \d+s ago/);
    assert.equal((await cli(BEHAVE, ["stop", "--pidfile", s.pidfile])).code, 0);
  });
});

Deno.test("supervised: when the supervisor gives up, status --json says failed and how the last run ended, in the daemon's words", async () => {
  await withScratch(async (s) => {
    const { supervisor } = await supervisedStart(s, BEHAVE, [
      ...s.paths,
      "--restart",
      "on-failure",
      "--max-restarts",
      "0",
      "--behavior",
      "throw-after-ready",
    ]);
    await waitFor("the supervisor gives up", () => !alive(supervisor));
    const json = await statusJson(s);
    assert.equal(json.code, 1);
    assert.equal(json.report.state, "failed");
    const last = json.report.lastExit as Record<string, unknown>;
    assert.equal(last.how, "failed");
    assert.equal(last.detail, "uncaught error: Boom after ready");
  });
});

Deno.test({
  ...asRoot(
    "an exit record the daemon's user filled with lies is shown as one bounded line, and names no process to signal",
  ),
  fn: () =>
    withScratch(async (s) => {
      Deno.chmodSync(s.dir, 0o755);
      const target = victim(s);
      const pid = await started(s, BEHAVE, ["--user", "nobody"]);
      const record = `${s.dir}/d.exit`;
      assert.equal(
        Deno.statSync(record).uid,
        0,
        "root's, written through the descriptor",
      );
      Deno.kill(pid, "SIGKILL");
      await waitFor("daemon gone", () => !alive(pid));
      // What the daemon could have written through its descriptor (as root here).
      const lie = {
        pid: target,
        how: "stopped",
        detail: `\u001b]0;owned\u0007\u001b[2J${"x".repeat(3000)}\nroot: ok`,
        code: 0,
        at: Date.now(),
      };
      Deno.writeTextFileSync(record, JSON.stringify(lie));
      const st = await cli(BEHAVE, ["status", "--pidfile", s.pidfile]);
      assert.equal(st.stdout.split("\n").length, 2, "one line");
      assert.ok(
        [...st.stdout.slice(0, -1)].every((ch) => ch >= " " && ch !== "\x7f"),
        "no control character",
      );
      assert.ok(st.stdout.length < 1000, `${st.stdout.length} characters`);
      Deno.writeTextFileSync(record, "{".repeat(100_000));
      const garbage = await cli(BEHAVE, ["status", "--pidfile", s.pidfile]);
      assert.equal(garbage.code, 1, "dead, and the record ignored");
      const stop = await cli(BEHAVE, ["stop", "--pidfile", s.pidfile]);
      assert.equal(stop.code, 0, stop.stderr);
      assert.ok(alive(target), "the victim was not signalled");
      assert.throws(() => Deno.statSync(record), "cleared");
    }),
});

/**
 * How to run a shell line as a user other than root, with a home in the
 * scratch directory: `nobody` when the tests run as root, else ourselves.
 */
function asUser(s: Scratch): { home: string; line: (l: string) => string } {
  if (Deno.uid() !== 0) {
    return { home: s.dir, line: (l) => `HOME=${s.dir} ${l}` };
  }
  const home = nobodyHome(s);
  return { home, line: (l) => asNobodyLine(home, l) };
}

Deno.test("--instance gives each instance its own pidfile, log and records; status --all lists them as a table or JSON", async () => {
  await withScratch(async (s) => {
    const user = asUser(s);
    const run = (args: string[]) =>
      sh(user.line(`env -u XDG_STATE_HOME ${denoLine(BEHAVE, args)}`));
    const pids: number[] = [];
    try {
      for (const instance of ["a", "b"]) {
        const r = await run(["start", "--instance", instance]);
        assert.equal(r.code, 0, r.stdout + r.stderr);
        const m = r.stdout.match(/^behave@(a|b) started \(pid (\d+)\)/);
        assert.ok(m, r.stdout);
        pids.push(s.track(Number(m[2]))!);
      }
      const dir = `${user.home}/.local/state/behave`;
      assert.equal(readPid(`${dir}/behave@a.pid`), pids[0]);
      assert.equal(readPid(`${dir}/behave@b.pid`), pids[1]);
      assert.match(Deno.readTextFileSync(`${dir}/behave@b.log`), /Ready/);
      const b = await run(["stop", "--instance", "b"]);
      assert.match(b.stdout, /^behave@b stopped/);

      const table = await run(["status", "--all"]);
      assert.equal(table.code, 3, "not all run");
      const lines = table.stdout.trim().split("\n");
      assert.match(
        lines[0],
        /^INSTANCE +STATE +PID +UPTIME +RESTARTS +LAST EXIT$/,
      );
      assert.match(lines[1], new RegExp(`^a +running +${pids[0]} `));
      assert.match(lines[2], /^b +stopped +- +- +- +stopped \(SIGTERM\)/);
      const json = await run(["status", "--all", "--json"]);
      const reports = JSON.parse(json.stdout);
      assert.deepEqual(
        reports.map((r: Record<string, unknown>) => [r.instance, r.state]),
        [["a", "running"], ["b", "stopped"]],
      );
      assert.equal(reports[0].name, "behave@a");
      const bad = await run(["status", "--all", "--pidfile", `${s.dir}/x.pid`]);
      assert.equal(bad.code, 2);
      const name = await run(["start", "--instance", "../x"]);
      assert.equal(name.code, 2);
      assert.match(name.stderr, /Invalid value for --instance: "\.\.\/x"/);
    } finally {
      await run(["stop", "--instance", "a"]);
    }
  });
});

Deno.test("logs finds the log through the launch record: the pidfile is enough", async () => {
  await withScratch(async (s) => {
    const log = `${s.dir}/elsewhere.log`;
    const r = await cli(BEHAVE, [
      "start",
      "--pidfile",
      s.pidfile,
      "--log-file",
      log,
    ]);
    assert.equal(r.code, 0, r.stderr);
    s.track();
    const logs = await cli(BEHAVE, ["logs", "--pidfile", s.pidfile, "-n", "1"]);
    assert.equal(logs.code, 0, logs.stderr);
    assert.match(logs.stdout, /Ready \(pid \d+/);
    assert.equal((await cli(BEHAVE, ["stop", "--pidfile", s.pidfile])).code, 0);
  });
});

Deno.test("a daemon that failed to start: status exits 1 and says why, as start did; stop clears it", async () => {
  await withScratch(async (s) => {
    const r = await cli(BEHAVE, [
      "start",
      ...s.paths,
      "--behavior",
      "throw-before-ready",
    ]);
    assert.equal(r.code, 1, r.stdout + r.stderr);
    const st = await cli(BEHAVE, ["status", "--pidfile", s.pidfile]);
    assert.equal(st.code, 1, st.stdout);
    assert.match(st.stdout, /not running: it failed \(start-up failed: /);
    const stop = await cli(BEHAVE, ["stop", "--pidfile", s.pidfile]);
    assert.match(stop.stdout, /cleared the record of its last run: failed/);
    assert.equal(
      (await cli(BEHAVE, ["status", "--pidfile", s.pidfile])).code,
      3,
    );
  });
});
