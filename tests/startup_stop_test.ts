/**
 * Stops and reloads that reach the daemon while it starts: before its
 * signal handlers exist, while `prepare` awaits `ctx.signal`, before the
 * privilege drop, and SIGHUP before it is ready.
 */
import assert from "node:assert/strict";
import { libc } from "../ffi/mod.ts";
import {
  asRoot,
  BEHAVE,
  type CliResult,
  cliRunning,
  pidfdOn,
  preparing,
  procStat,
  procStatus,
  readPid,
  type Scratch,
  waitFor,
  withScratch,
} from "./helpers.ts";

/**
 * `behave start <args>` with the slow prepare, and the first pid its
 * pidfile names (polled every millisecond, so that a signal sent to it
 * lands in the start-up), tracked, and `start`'s own pid.
 */
async function startSlowly(
  s: Scratch,
  args: string[] = [],
  via: string[] = [],
): Promise<{ pid: number; start: number; result: Promise<CliResult> }> {
  const start = cliRunning(s, BEHAVE, [
    "start",
    ...s.paths,
    "--behavior",
    "slow-prepare",
    ...args,
  ], { via });
  await waitFor(
    "the pidfile to name a process",
    () => readPid(s.pidfile) !== undefined,
    10_000,
    1,
  );
  return { pid: s.track()!, start: start.pid, result: start.result };
}

Deno.test("a stop while prepare awaits ctx.signal and rejects with its reason is a stop: exit 0, no start-up failure", async () => {
  await withScratch(async (s) => {
    const run = await preparing(s, "slow-prepare-rejects");
    run.child.kill("SIGTERM");
    const code = await run.end();
    assert.doesNotMatch(run.err, /Start-up failed/, run.err);
    assert.equal(code, 0, run.err);
    const record = JSON.parse(
      Deno.readTextFileSync(s.pidfile.replace(/\.pid$/, ".exit")),
    );
    assert.equal(record.how, "stopped", JSON.stringify(record));
  });
});

Deno.test({
  ...asRoot(
    "a stop while the daemon prepares ends it before the privilege drop: its pidfile is removed",
  ),
  fn: async () => {
    await withScratch(async (s) => {
      Deno.chmodSync(s.dir, 0o755);
      const run = await preparing(s, "slow-prepare", ["--user", "nobody"]);
      run.child.kill("SIGTERM");
      const code = await run.end();
      assert.equal(code, 0, run.err);
      assert.doesNotMatch(run.err, /Running as uid/, run.err);
      assert.equal(readPid(s.pidfile), undefined, run.err);
    });
  },
});

Deno.test("a SIGHUP while the daemon prepares does not tell the service manager READY=1", async () => {
  await withScratch(async (s) => {
    const c = libc();
    const socket = `${s.dir}/notify.sock`;
    const fd = c.bindDatagram(socket);
    const texts: string[] = [];
    let open = true;
    const receiving = (async () => {
      while (open) {
        const m = await c.receiveDatagram(fd, 100);
        if (m !== null) texts.push(new TextDecoder().decode(m));
      }
    })();
    try {
      const run = await preparing(s, "slow-prepare", [], {
        NOTIFY_SOCKET: socket,
      });
      run.child.kill("SIGHUP");
      // Noted ("Reload requested while …"), or run at once ("Reloading").
      await run.until("Reload");
      run.child.kill("SIGTERM");
      assert.equal(await run.end(), 0, run.err);
      const stopping = (t: string) => /^STOPPING=1$/m.test(t);
      await waitFor("STOPPING=1", () => texts.some(stopping));
      const early = texts.slice(0, texts.findIndex(stopping));
      assert.ok(
        !early.some((t) => /^READY=1$/m.test(t)),
        `READY=1 while still in prepare: ${JSON.stringify(texts)}\n${run.err}`,
      );
    } finally {
      open = false;
      await receiving;
      c.close(fd);
    }
  });
});

Deno.test("start: a SIGTERM sent as soon as the pidfile names the daemon is a stop, not a death by the signal", async () => {
  await withScratch(async (s) => {
    const { pid, result } = await startSlowly(s);
    Deno.kill(pid, "SIGTERM");
    const said = (await result).stderr;
    assert.match(said, /Stopped by SIGTERM before it was ready/, s.log());
  });
});

Deno.test("start --restart: a SIGTERM sent to the supervisor as soon as the pidfile names it is a stop: it stops its daemon and exits 0, no pidfile left", async () => {
  await withScratch(async (s) => {
    const { pid, result } = await startSlowly(s, ["--restart", "on-failure"]);
    Deno.kill(pid, "SIGTERM");
    const out = await result;
    assert.equal(out.code, 1);
    // What start says, as without a supervisor.
    assert.match(
      out.stderr,
      /Stopped by SIGTERM before it was ready/,
    );
    await waitFor(
      "the supervisor's exit",
      () => /Supervisor exits \(0\)/.test(s.log()),
    );
    assert.match(s.log(), /supervisor: Stopping on SIGTERM/);
    assert.equal(readPid(s.pidfile), undefined, s.log());
  });
});

Deno.test("start keeps the daemon its own child until it is ready (reparented to it when the session leader ends), so that no other process can take its pid meanwhile", async () => {
  await withScratch(async (s) => {
    for (const args of [[], ["--restart", "on-failure"]]) {
      const { pid, start, result } = await startSlowly(s, args);
      await waitFor(
        `pid ${pid} to be start's child (pid ${start})`,
        () => procStat(pid).ppid === start,
        10_000,
      );
      Deno.kill(pid, "SIGTERM");
      const said = (await result).stderr;
      assert.match(said, /Stopped by SIGTERM before it was ready/, s.log());
      await waitFor(
        "the pidfile's removal",
        () => readPid(s.pidfile) === undefined,
      );
    }
  });
});

/**
 * Whether `pid` is a zombie whose threads are all gone (a process whose
 * main thread exited first shows `Z` while the others still end).
 *
 * @throws {Error} Once the pid is free: nobody may have reaped it.
 */
function zombie(pid: number): boolean {
  try {
    return procStatus(pid, "State").startsWith("Z") &&
      [...Deno.readDirSync(`/proc/${pid}/task`)].length === 1;
  } catch {
    throw new Error(`pid ${pid} was freed while start runs`);
  }
}

Deno.test("a daemon that dies while start waits keeps its pid, a zombie of start's, until start ends: also when start's caller left SIGCHLD ignored", async () => {
  // An ignored SIGCHLD survives execve: the kernel would reap at once.
  for (const via of [[], ["env", "--ignore-signal=CHLD"]]) {
    await withScratch(async (s) => {
      const { pid, start, result } = await startSlowly(s, [], via);
      await waitFor(
        `start (pid ${start}) to pin its child ${pid}`,
        () => procStat(pid).ppid === start && pidfdOn(pid, start),
      );
      // Stopped, start can neither reap it nor end: only the kernel could
      // free the pid now.
      Deno.kill(start, "SIGSTOP");
      try {
        Deno.kill(pid, "SIGKILL");
        await waitFor(
          `pid ${pid} to be a zombie (${via.join(" ")})`,
          () => zombie(pid),
        );
        assert.equal(procStat(pid).ppid, start);
      } finally {
        Deno.kill(start, "SIGCONT");
      }
      const r = await result;
      assert.equal(r.code, 1, r.stderr);
      assert.match(r.stderr, /was killed by SIGKILL before it was ready/);
    });
  }
});

Deno.test("a daemon that dies before start pins it is still start's to report: the signal that killed it, not a bare exit", async () => {
  await withScratch(async (s) => {
    const start = cliRunning(s, BEHAVE, [
      "start",
      ...s.paths,
      "--behavior",
      "slow-prepare",
    ]);
    const children = () =>
      Deno.readTextFileSync(`/proc/${start.pid}/task/${start.pid}/children`)
        .trim();
    // Stopped as soon as it spawned the leader: it cannot have pinned the
    // daemon, which the leader has yet to spawn.
    await waitFor(
      "start to spawn the leader",
      () => children() !== "",
      10_000,
      1,
    );
    Deno.kill(start.pid, "SIGSTOP");
    try {
      await waitFor(
        "the pidfile to name a process",
        () => readPid(s.pidfile) !== undefined,
      );
      const pid = s.track()!;
      await waitFor(
        `the leader's end (pid ${pid} reparented to start)`,
        () => procStat(pid).ppid === start.pid,
      );
      assert.ok(!pidfdOn(pid, start.pid), "start pinned the daemon already");
      Deno.kill(pid, "SIGKILL");
      await waitFor(`pid ${pid} to be a zombie`, () => zombie(pid));
    } finally {
      Deno.kill(start.pid, "SIGCONT");
    }
    const r = await start.result;
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stderr, /was killed by SIGKILL before it was ready/);
  });
});
