/**
 * What denod's own processes actually load, read at run time: every process
 * runs with V8's function-event log (`--v8-flags=--log-function-events`),
 * which names each script the isolate compiles, the runtime's lazily loaded
 * `ext:deno_node/…` and `node:…` modules included. The flags ride on the
 * command line that `start` re-executes, so the session leader, the
 * supervisor and the daemon write their own logs (named by pid).
 */
import assert from "node:assert/strict";
import {
  alive,
  cli,
  EXAMPLE,
  readPid,
  type Scratch,
  waitFor,
  withScratch,
} from "./helpers.ts";

/** The scripts an isolate compiled, from its V8 log. */
function scriptsIn(log: string): Set<string> {
  return new Set(
    [...log.matchAll(/^script-details,\d+,([^,\n]+),/gm)].map((m) => m[1]),
  );
}

/** Scripts of the Node layer or of npm packages. */
function nodeScripts(scripts: Set<string>, baseline: Set<string>): string[] {
  return [...scripts].filter((s) =>
    !baseline.has(s) &&
    (s.startsWith("node:") || s.startsWith("ext:deno_node/") ||
      s.startsWith("npm:") || s.includes("/node_modules/"))
  );
}

/** The V8 flags that make each process log to `dir/<pid>.log`. */
const flags = (dir: string) =>
  `--v8-flags=--log-function-events,--logfile=${dir}/%p.log`;

/** Each process's compiled scripts, by pid, from the logs in `dir`. */
function logsByPid(dir: string): Map<number, Set<string>> {
  const byPid = new Map<number, Set<string>>();
  for (const e of Deno.readDirSync(dir)) {
    // V8 names the file isolate-<address>-<pid>-<pid>.log.
    const m = e.name.match(/-(\d+)\.log$/);
    if (!m) continue;
    byPid.set(
      Number(m[1]),
      scriptsIn(Deno.readTextFileSync(`${dir}/${e.name}`)),
    );
  }
  return byPid;
}

/** Run `deno run -A <flags> <entry> <args>` in a fresh log directory. */
async function logged(
  s: Scratch,
  name: string,
  entry: string,
  args: string[],
): Promise<
  { out: string; code: number; pid: number; logs: Map<number, Set<string>> }
> {
  const dir = `${s.dir}/v8-${name}`;
  Deno.mkdirSync(dir);
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", flags(dir), entry, ...args],
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const r = await child.output();
  const dec = new TextDecoder();
  return {
    out: dec.decode(r.stdout) + dec.decode(r.stderr),
    code: r.code,
    pid: child.pid,
    logs: logsByPid(dir),
  };
}

/** What an empty program loads of the Node layer at boot (the runtime's own). */
async function baseline(s: Scratch): Promise<Set<string>> {
  Deno.writeTextFileSync(`${s.dir}/empty.ts`, "");
  const { logs } = await logged(s, "empty", `${s.dir}/empty.ts`, []);
  assert.equal(logs.size, 1);
  return [...logs.values()][0];
}

Deno.test("the run-time check sees a `node:` module that a program loads", async () => {
  await withScratch(async (s) => {
    const base = await baseline(s);
    Deno.writeTextFileSync(
      `${s.dir}/util.ts`,
      `import "node:util"; setTimeout(() => {}, 0);`,
    );
    const { logs } = await logged(s, "util", `${s.dir}/util.ts`, []);
    const found = nodeScripts([...logs.values()][0], base);
    assert.ok(found.includes("ext:deno_node/util.ts"), found.join(" "));
    assert.ok(found.includes("node:timers"), found.join(" "));
  });
});

Deno.test("no process of denod's own loads a `node:` module or npm code, at run time: every command's caller, the session leader, the supervisor, the daemon", async () => {
  await withScratch(async (s) => {
    const base = await baseline(s);
    const daemonArgs = [...s.paths, "--port", "0"];
    /** Assert each stage's process loaded `marker` and nothing of Node. */
    const check = (
      what: string,
      logs: Map<number, Set<string>>,
      stages: Map<number, string>,
    ) => {
      assert.equal(
        logs.size,
        stages.size,
        `${what}: one log per process (${[...logs.keys()]})`,
      );
      for (const [pid, stage] of stages) {
        const scripts = logs.get(pid);
        assert.ok(scripts, `${what}: ${stage} (pid ${pid}) wrote a log`);
        assert.ok(
          [...scripts].some((x) => x.endsWith("/src/cli.ts")),
          `${what}: ${stage} ran denod`,
        );
        assert.deepEqual(nodeScripts(scripts, base), [], `${what}: ${stage}`);
      }
    };
    /**
     * The processes of one command, by pid: the caller, the stages it
     * reported, and the session leader, the one process nobody names.
     */
    const stagesOf = (
      r: { pid: number; logs: Map<number, Set<string>> },
      named: Record<string, number> = {},
    ) => {
      const stages = new Map<number, string>([[r.pid, "caller"]]);
      for (const [stage, pid] of Object.entries(named)) stages.set(pid, stage);
      const others = [...r.logs.keys()].filter((pid) => !stages.has(pid));
      assert.ok(
        others.length <= 1,
        `one session leader: ${others} (${r.pid}, ${JSON.stringify(named)})`,
      );
      if (others.length === 1) stages.set(others[0], "session leader");
      return stages;
    };

    for (const command of ["help", "version", "unit"]) {
      const r = await logged(s, command, EXAMPLE, [command]);
      assert.equal(r.code, 0, r.out);
      check(command, r.logs, stagesOf(r));
    }

    // `logs -f` waits between looks at the file, until interrupted.
    Deno.writeTextFileSync(s.logFile, "first\n");
    const logsDir = `${s.dir}/v8-logs`;
    Deno.mkdirSync(logsDir);
    const follow = new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", flags(logsDir), EXAMPLE, "logs", "-f", ...s.paths],
      stdin: "null",
      stdout: "piped",
      stderr: "null",
    }).spawn();
    s.track(follow.pid);
    const shown = follow.stdout.pipeThrough(new TextDecoderStream())
      .getReader();
    let text = "";
    const until = async (want: string) => {
      while (!text.includes(want)) {
        const { value, done } = await shown.read();
        if (done) break;
        text += value;
      }
      assert.ok(text.includes(want), text);
    };
    await until("first\n");
    // Shown after a wait between two looks at the file.
    Deno.writeTextFileSync(s.logFile, "more\n", { append: true });
    await until("more\n");
    follow.kill("SIGINT");
    while (!(await shown.read()).done) { /* to its end */ }
    assert.equal((await follow.status).code, 0);
    check(
      "logs -f",
      logsByPid(logsDir),
      new Map([[follow.pid, "caller"]]),
    );

    const start = await logged(s, "start", EXAMPLE, ["start", ...daemonArgs]);
    assert.equal(start.code, 0, start.out);
    const daemon = s.track(Number(start.out.match(/started \(pid (\d+)/)![1]))!;
    for (const command of ["status", "reload"]) {
      const r = await logged(s, command, EXAMPLE, [command, ...s.paths]);
      assert.equal(r.code, 0, r.out);
      check(command, r.logs, stagesOf(r));
    }
    const stop = await logged(s, "stop", EXAMPLE, ["stop", ...s.paths]);
    assert.equal(stop.code, 0, stop.out);
    // The daemon's log is complete once it has exited: read it with stop's.
    const all = { ...start, logs: logsByPid(`${s.dir}/v8-start`) };
    const started = stagesOf(all, { daemon });
    assert.deepEqual(
      [...started.values()].sort(),
      ["caller", "daemon", "session leader"],
    );
    check("start", all.logs, started);
    check("stop", stop.logs, stagesOf(stop));
    // Each process compiles what its job needs: the session leader neither
    // the parser nor `start` (its caller's), the callers of `status` and
    // `stop` not `start`.
    const leader = [...started].find(([, stage]) => stage === "session leader");
    assert.ok(leader);
    const leaderScripts = all.logs.get(leader[0])!;
    assert.ok(
      [...leaderScripts].some((x) => x.endsWith("/src/leader.ts")),
      "the session leader ran its module",
    );
    for (
      const [what, scripts, absent] of [
        ["session leader", leaderScripts, [
          "start",
          "control",
          "parse",
          "serve",
          "log",
        ]],
        ["stop", stop.logs.get(stop.pid)!, ["start", "serve", "log"]],
      ] as const
    ) {
      for (const file of absent) {
        assert.ok(
          ![...scripts].some((x) => x.endsWith(`/src/${file}.ts`)),
          `${what} loaded src/${file}.ts`,
        );
      }
    }

    const supervised = await logged(s, "supervised", EXAMPLE, [
      "start",
      ...daemonArgs,
      "--restart",
      "on-failure",
    ]);
    assert.equal(supervised.code, 0, supervised.out);
    const m = supervised.out.match(/pid (\d+), supervised by pid (\d+)/);
    assert.ok(m, supervised.out);
    s.track(Number(m[1]));
    s.track(Number(m[2]));
    const restart = await logged(s, "restart", EXAMPLE, [
      "restart",
      ...daemonArgs,
    ]);
    assert.equal(restart.code, 0, restart.out);
    // Supervised again: restart applies the options start was given.
    const again = restart.out.match(
      /started \(pid (\d+), supervised by pid (\d+)\)/,
    );
    assert.ok(again, restart.out);
    const restarted = s.track(Number(again[1]))!;
    const resupervisor = s.track(Number(again[2]))!;
    assert.equal(
      (await cli(EXAMPLE, ["stop", ...s.paths])).code,
      0,
    );
    await waitFor(
      "the daemon's and its supervisor's end",
      () => !alive(restarted) && !alive(resupervisor),
    );
    const sup = { ...supervised, logs: logsByPid(`${s.dir}/v8-supervised`) };
    const supStages = stagesOf(sup, {
      daemon: Number(m[1]),
      supervisor: Number(m[2]),
    });
    assert.equal(supStages.size, 4, [...supStages.values()].join());
    check("start --restart on-failure", sup.logs, supStages);
    const re = { ...restart, logs: logsByPid(`${s.dir}/v8-restart`) };
    check(
      "restart",
      re.logs,
      stagesOf(re, { daemon: restarted, supervisor: resupervisor }),
    );

    // `run` is the daemon in the foreground: stopped by SIGTERM once ready.
    const dir = `${s.dir}/v8-run`;
    Deno.mkdirSync(dir);
    const run = new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", flags(dir), EXAMPLE, "run", ...daemonArgs],
      stdin: "null",
      stdout: "null",
      stderr: "piped",
    }).spawn();
    s.track(run.pid);
    // Ready, not merely holding the pidfile: its signal handlers come after.
    // Its stderr is read to the end (a closed pipe would drop its log lines).
    const stderr = run.stderr.pipeThrough(new TextDecoderStream()).getReader();
    let said = "";
    while (!said.includes("Ready")) {
      const { value, done } = await stderr.read();
      if (done) break;
      said += value;
    }
    assert.equal(readPid(s.pidfile), run.pid, said);
    run.kill("SIGTERM");
    for (;;) {
      const { value, done } = await stderr.read();
      if (done) break;
      said += value;
    }
    assert.equal((await run.status).code, 0, said);
    check("run", logsByPid(dir), new Map([[run.pid, "daemon (run)"]]));
  });
});
