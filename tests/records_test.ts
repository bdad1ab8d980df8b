/**
 * What a daemon's records remember: the launch record (`restart` and `stop`
 * apply the options it was started with).
 */
import assert from "node:assert/strict";
import {
  alive,
  BEHAVE,
  cli,
  EXAMPLE,
  listeningPort,
  type Scratch,
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
