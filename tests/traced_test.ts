/**
 * A daemon that exits while a process of its own user traces it: the
 * tracer holds its exit status from its parent. Root's `start`, the
 * supervisor and `upgrade` must not wait on that user's word.
 */
import assert from "node:assert/strict";
import {
  cli,
  cliRunning,
  ROOT,
  type Scratch,
  started,
  waitFor,
  withScratch,
} from "./helpers.ts";

const TRACED = `${ROOT}tests/fixtures/traced.ts`;

/**
 * `name`, skipped where Yama keeps the fixture's tracer from attaching:
 * `ptrace_scope` 3 forbids ptrace, and 2 leaves it to `CAP_SYS_PTRACE`,
 * which only root has here (scope 1 allows it through `PR_SET_PTRACER`).
 */
function whereTracingWorks(name: string): { name: string; ignore: boolean } {
  let scope = 0;
  try {
    scope = Number(Deno.readTextFileSync("/proc/sys/kernel/yama/ptrace_scope"));
  } catch {
    // No Yama: ptrace between processes of one user is allowed.
  }
  const why = scope >= 3
    ? "Yama ptrace_scope 3 forbids ptrace"
    : scope === 2 && Deno.uid() !== 0
    ? "Yama ptrace_scope 2 leaves ptrace to root"
    : null;
  return why === null
    ? { name, ignore: false }
    : { name: `${name} (skipped: ${why})`, ignore: true };
}

/** Track the tracer the daemon started (cleanup kills it); its pid, or why not. */
function trackTracer(s: Scratch): string {
  let said;
  try {
    said = Deno.readTextFileSync(`${s.pidfile}.tracer`);
  } catch {
    return "none";
  }
  if (/^\d+$/.test(said)) s.track(Number(said));
  return said;
}

/**
 * Run `args` (a start or an upgrade whose daemon exits while traced) and
 * check that it fails within 10 s, saying the status is held.
 *
 * @returns Its standard error.
 */
async function failsPromptly(s: Scratch, args: string[]): Promise<string> {
  const t0 = performance.now();
  const r = await cliRunning(s, TRACED, [...args, "--ready-timeout", "30"])
    .result.finally(() => trackTracer(s));
  const ms = performance.now() - t0;
  assert.match(s.log(), /Tracer: \d+/, "the tracer attached");
  assert.equal(r.code, 1, r.stderr);
  assert.match(
    r.stderr,
    /The daemon ended \(a process tracing it holds its exit status\) before it was ready/,
  );
  assert.ok(ms < 10_000, `${args[0]} took ${Math.round(ms)} ms`);
  return r.stderr;
}

Deno.test({
  ...whereTracingWorks(
    "start is not held by a daemon that exits while a process of its user traces it: it says so at once",
  ),
  fn: async () => {
    await withScratch(async (s) => {
      const said = await failsPromptly(s, ["start", ...s.paths]);
      assert.match(said, /^traced: The daemon ended .* \(log: .*\)\n$/);
    });
  },
});

Deno.test({
  ...whereTracingWorks(
    "start --restart: the supervisor is not held by a daemon that exits while traced before it is ready: it reports the failure and ends",
  ),
  fn: async () => {
    await withScratch(async (s) => {
      await failsPromptly(s, [
        "start",
        ...s.paths,
        "--restart",
        "on-failure",
      ]);
      assert.match(
        s.log(),
        /exited with an unknown status \(a process tracing it holds it\)/,
      );
      await waitFor(
        "the supervisor's end",
        () => /Supervisor exits/.test(s.log()),
      );
      const stop = await cli(TRACED, ["stop", ...s.paths]);
      assert.equal(stop.code, 0, stop.stderr);
      assert.match(stop.stdout, /not running/);
    });
  },
});

Deno.test({
  ...whereTracingWorks(
    "start --restart: a daemon that exits while traced once it is ready is restarted, and stop is prompt",
  ),
  fn: async () => {
    await withScratch(async (s) => {
      const r = await cli(TRACED, [
        "start",
        ...s.paths,
        "--when",
        "ready",
        "--restart",
        "on-failure",
        "--restart-delay",
        "0.1",
        // A traced daemon that gets SIGTERM stops for its tracer, which never
        // lets it go on: only the SIGKILL after the stop timeout ends it.
        "--stop-timeout",
        "2",
      ]);
      assert.equal(r.code, 0, r.stderr);
      s.track(); // the supervisor
      await waitFor(
        "a restart after an end held by a tracer",
        () =>
          /unknown status \(a process tracing it holds it\)[^\n]*restart 1/
            .test(
              s.log(),
            ),
        20_000,
      );
      trackTracer(s);
      const t0 = performance.now();
      const stop = await cli(TRACED, ["stop", ...s.paths]);
      const ms = performance.now() - t0;
      trackTracer(s);
      assert.equal(stop.code, 0, stop.stderr);
      assert.ok(ms < 10_000, `stop took ${Math.round(ms)} ms`);
    });
  },
});

Deno.test({
  ...whereTracingWorks(
    "upgrade is not held by a new generation that exits while traced; the old one serves on",
  ),
  fn: async () => {
    await withScratch(async (s) => {
      const old = await started(s, TRACED, ["--when", "upgrade"]);
      const pidfileBefore = Deno.readTextFileSync(s.pidfile);
      await failsPromptly(s, ["upgrade", ...s.paths]);
      assert.equal(Deno.readTextFileSync(s.pidfile), pidfileBefore);
      const st = await cli(TRACED, ["status", ...s.paths]);
      assert.match(st.stdout, new RegExp(`running \\(pid ${old},`));
    });
  },
});
