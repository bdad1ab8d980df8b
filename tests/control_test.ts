/**
 * stop, status, restart, reload and run against real daemons, signals inside
 * the daemon, and Debian's start-stop-daemon as a peer.
 */
import assert from "node:assert/strict";
import {
  alive,
  BEHAVE,
  cli,
  EXAMPLE,
  foreground,
  listeningPort,
  pidfdOn,
  preparing,
  procFds,
  readPid,
  ROOT,
  sh,
  shq,
  started,
  waitFor,
  withScratch,
} from "./helpers.ts";

Deno.test("stop sends SIGTERM, the daemon exits 0 and removes its pidfile; stop again still exits 0", async () => {
  await withScratch(async (s) => {
    const pid = await started(s, EXAMPLE, ["--port", "0"]);
    const r = await cli(EXAMPLE, ["stop", ...s.paths]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, new RegExp(`stopped \\(pid ${pid}\\)`));
    assert.ok(!alive(pid));
    assert.throws(() => Deno.statSync(s.pidfile), "pidfile removed");
    assert.match(s.log(), /Stopping on SIGTERM/);
    assert.match(s.log(), /Stopped \(SIGTERM, exit 0/);
    const again = await cli(EXAMPLE, ["stop", ...s.paths]);
    assert.equal(again.code, 0);
    assert.match(again.stdout, /is not running/);
  });
});

Deno.test("status exits 0 running, 1 dead with pidfile, 3 not running, 4 unknown", async () => {
  await withScratch(async (s) => {
    const none = await cli(EXAMPLE, ["status", ...s.paths]);
    assert.equal(none.code, 3);
    assert.match(none.stdout, /is not running/);

    const pid = await started(s, EXAMPLE, ["--port", "0"]);
    const up = await cli(EXAMPLE, ["status", ...s.paths]);
    assert.equal(up.code, 0);
    assert.match(up.stdout, new RegExp(`is running \\(pid ${pid}, up \\d+s`));

    Deno.kill(pid, "SIGKILL");
    await waitFor("daemon gone", () => !alive(pid));
    const dead = await cli(EXAMPLE, ["status", ...s.paths]);
    assert.equal(dead.code, 1);
    assert.match(
      dead.stdout,
      new RegExp(`pidfile .* remains \\(pid ${pid}\\)`),
    );

    const unknown = await cli(EXAMPLE, ["status", "--pidfile", s.dir]);
    assert.equal(unknown.code, 4, unknown.stderr);
    assert.match(
      unknown.stdout,
      /Refusing pidfile .*: it is a directory, not a regular file/,
    );
  });
});

Deno.test("status waits for a pidfile holder that is exiting (main thread gone, others still holding the lock): dead (1), not unknown (4)", async () => {
  await withScratch(async (s) => {
    // What a daemon killed a moment ago looks like under load: its main
    // thread is a zombie, hides its descriptors, and the others still hold
    // them, the pidfile's lock with them.
    const holder = `${s.dir}/holder.ts`;
    Deno.writeTextFileSync(
      holder,
      `import { libc } from ${JSON.stringify(`${ROOT}ffi/mod.ts`)};
const c = libc();
const fd = c.open(Deno.args[0], { write: true, create: true }, 0o644);
if (!c.tryLock(fd, true)) throw new Error("locked");
c.write(fd, new TextEncoder().encode(\`\${Deno.pid}\\n\`));
Deno.dlopen("libc.so.6", {
  pthread_exit: { parameters: ["pointer"], result: "void" },
}).symbols.pthread_exit(null);
`,
    );
    const child = new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", holder, s.pidfile],
      stdin: "null",
      stdout: "null",
      stderr: "null",
    }).spawn();
    s.track(child.pid);
    await waitFor(
      "the holder's main thread to be gone, the lock held",
      () => readPid(s.pidfile) === child.pid && !alive(child.pid),
    );
    const status = cli(EXAMPLE, ["status", ...s.paths]);
    // It ends while status waits for it: once status holds a pidfd on it.
    await waitFor("status to wait on the holder", () => pidfdOn(child.pid));
    child.kill("SIGKILL");
    const r = await status;
    assert.equal(r.code, 1, r.stdout + r.stderr);
    assert.match(
      r.stdout,
      new RegExp(`pidfile .* remains \\(pid ${child.pid}\\)`),
    );
    await child.status;
  });
});

Deno.test("a stale pidfile naming an unrelated live process never gets it signalled", async () => {
  await withScratch(async (s) => {
    const victim = new Deno.Command("sleep", { args: ["60"] }).spawn();
    s.track(victim.pid);
    try {
      Deno.writeTextFileSync(s.pidfile, `${victim.pid}\n`);
      const st = await cli(EXAMPLE, ["status", ...s.paths]);
      assert.equal(st.code, 1, "dead, pidfile exists");
      const stop = await cli(EXAMPLE, ["stop", ...s.paths]);
      assert.equal(stop.code, 0);
      assert.match(stop.stdout, /not running \(removed its stale pidfile\)/);
      assert.ok(alive(victim.pid), "the unrelated process was not signalled");
      assert.throws(() => Deno.statSync(s.pidfile));
      const reload = await cli(EXAMPLE, ["reload", ...s.paths]);
      assert.equal(reload.code, 7);
      assert.ok(alive(victim.pid));
    } finally {
      victim.kill("SIGKILL");
      await victim.status;
    }
  });
});

Deno.test("stop SIGKILLs a daemon that does not stop within --stop-timeout and removes its pidfile", async () => {
  await withScratch(async (s) => {
    const pid = await started(s, BEHAVE, ["--behavior", "stuck-stop"]);
    const t0 = performance.now();
    const r = await cli(BEHAVE, ["stop", ...s.paths, "--stop-timeout", "1"]);
    const took = performance.now() - t0;
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /killed after --stop-timeout/);
    assert.ok(took >= 1000 && took < 8000, `took ${took} ms`);
    assert.ok(!alive(pid));
    assert.throws(
      () => Deno.statSync(s.pidfile),
      "stop removed the pidfile the killed daemon left",
    );
  });
});

Deno.test("a daemon that overruns its --stop-timeout exits by itself; a second SIGTERM exits at once", async () => {
  await withScratch(async (s) => {
    const pid = await started(s, BEHAVE, [
      "--behavior",
      "slow-stop",
      "--stop-timeout",
      "1",
    ]);
    Deno.kill(pid, "SIGTERM");
    await waitFor(
      "daemon exits by its own stop timeout",
      () => !alive(pid),
      5000,
    );
    assert.match(s.log(), /Did not stop within 1 s/);
    assert.throws(() => Deno.statSync(s.pidfile));

    const pid2 = await started(s, BEHAVE, ["--behavior", "slow-stop"]);
    Deno.kill(pid2, "SIGTERM");
    await waitFor(
      "slow stop begun",
      () => (s.log().match(/Slow stop begins/g) ?? []).length === 2,
    );
    const t0 = performance.now();
    Deno.kill(pid2, "SIGINT");
    await waitFor(
      "daemon exits on the second signal",
      () => !alive(pid2),
      3000,
    );
    assert.ok(performance.now() - t0 < 3000);
    assert.match(s.log(), /Second SIGINT: exiting now/);
    assert.throws(() => Deno.statSync(s.pidfile));
  });
});

for (const behavior of ["throw-after-ready", "reject-after-ready"]) {
  Deno.test(`an uncaught error after ready is logged with its stack, the pidfile removed, exit 1 (${behavior})`, async () => {
    await withScratch(async (s) => {
      const pid = await started(s, BEHAVE, ["--behavior", behavior]);
      await waitFor("daemon dies", () => !alive(pid));
      const log = s.log();
      assert.match(
        log,
        /\[FTL\] behave: Uncaught error: Error: (Boom|Rejected) after ready/,
      );
      assert.match(log, /\n\s+at .*behave\.ts:\d+/, "stack in the log");
      assert.match(log, /Stopped \(uncaught error, exit 1/);
      assert.throws(() => Deno.statSync(s.pidfile));
    });
  });
}

Deno.test("console.log and console.error of a detached daemon land in its log file", async () => {
  await withScratch(async (s) => {
    await started(s, BEHAVE, ["--behavior", "console"]);
    await waitFor(
      "console lines in the log",
      () => s.log().includes("console.error after ready"),
    );
    assert.match(s.log(), /console\.log after ready/);
    assert.match(
      s.log(),
      /Starting behave 1\.2\.3 \(pid \d+, uid \d+, detached, pidfile .*, logs to .*d\.log/,
    );
  });
});

Deno.test("a payload that calls Deno.exit() after ready leaves no pidfile behind, and status says it exited", async () => {
  await withScratch(async (s) => {
    const pid = await started(s, BEHAVE, ["--behavior", "exit-after-ready"]);
    await waitFor("daemon exits", () => !alive(pid));
    assert.throws(() => Deno.statSync(s.pidfile));
    const status = await cli(BEHAVE, ["status", ...s.paths]);
    assert.equal(status.code, 1, status.stdout);
    assert.match(
      status.stdout,
      /not running: it exited \(Deno\.exit\(\) in the payload\) \d+s ago/,
    );
  });
});

Deno.test("reload reopens the log file and runs the hook; a failing hook exits 1 and the daemon keeps running", async () => {
  await withScratch(async (s) => {
    const config = `${s.dir}/config.json`;
    Deno.writeTextFileSync(config, JSON.stringify({ greeting: "hello" }));
    const pid = await started(s, EXAMPLE, ["--port", "0", "--config", config]);
    const port = listeningPort(s.log());

    // logrotate-style: move the file away, then reload.
    Deno.renameSync(s.logFile, `${s.logFile}.1`);
    Deno.writeTextFileSync(config, JSON.stringify({ greeting: "bonjour" }));
    const r = await cli(EXAMPLE, ["reload", ...s.paths]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, new RegExp(`reloaded \\(pid ${pid}\\)`));
    const body = await (await fetch(`http://127.0.0.1:${port}/health`)).json();
    assert.deepEqual(body.config, { greeting: "bonjour" });
    await waitFor(
      "request logged in the new file",
      () => s.log().includes("GET /health"),
    );
    assert.doesNotMatch(
      Deno.readTextFileSync(`${s.logFile}.1`),
      /GET \/health/,
    );
    for (const [fd, target] of procFds(pid)) {
      assert.ok(
        !target.endsWith(".log.1"),
        `fd ${fd} still holds the rotated file`,
      );
    }

    Deno.writeTextFileSync(config, "{ not json");
    const bad = await cli(EXAMPLE, ["reload", ...s.paths]);
    assert.equal(bad.code, 1);
    assert.match(
      bad.stderr,
      /Reload failed: Invalid JSON in ".*\/config\.json": /,
    );
    assert.ok(alive(pid), "a failed reload does not stop the daemon");
  });
});

Deno.test("`ctx.onReload()` handlers run after the definition's hook, in order, with main's state; the first that throws ends the reload", async () => {
  await withScratch(async (s) => {
    const pid = await started(s, BEHAVE, ["--behavior", "reload-handlers"]);
    const first = await cli(BEHAVE, ["reload", ...s.paths]);
    assert.equal(first.code, 0, first.stderr);
    const order = [
      "The definition's reload hook",
      "First handler: reload 1",
      "Second handler: reload 1",
      "Third handler: reload 1",
    ];
    await waitFor("the reload's records", () => s.log().includes(order[3]));
    const at = order.map((line) => s.log().indexOf(line));
    assert.deepEqual([...at].sort((a, b) => a - b), at, s.log());

    const second = await cli(BEHAVE, ["reload", ...s.paths]);
    assert.equal(second.code, 1);
    assert.match(
      second.stderr,
      /Reload failed: Second handler fails on reload 2/,
    );
    await waitFor(
      "the second reload's first handler",
      () => s.log().includes("First handler: reload 2"),
    );
    assert.doesNotMatch(s.log(), /Third handler: reload 2/);
    assert.ok(alive(pid), "a failed reload does not stop the daemon");
  });
});

Deno.test("reload of a hook that throws reports its message; reload when not running exits 7", async () => {
  await withScratch(async (s) => {
    const none = await cli(BEHAVE, ["reload", ...s.paths]);
    assert.equal(none.code, 7);
    await started(s, BEHAVE, ["--behavior", "reload-fails"]);
    const r = await cli(BEHAVE, ["reload", ...s.paths]);
    assert.equal(r.code, 1);
    assert.match(
      r.stderr,
      /Reload failed: Config file has a syntax error on line 3/,
    );
  });
});

Deno.test("restart replaces the daemon and the new one answers", async () => {
  await withScratch(async (s) => {
    const old = await started(s, EXAMPLE, ["--port", "0"]);
    const r = await cli(EXAMPLE, ["restart", ...s.paths, "--port", "0"]);
    const pid = s.track()!;
    assert.equal(r.code, 0, r.stderr);
    assert.notEqual(pid, old);
    assert.ok(!alive(old));
    const res = await fetch(
      `http://127.0.0.1:${listeningPort(s.log())}/health`,
    );
    assert.equal((await res.json()).pid, pid);
  });
});

Deno.test("run --pidfile on a pidfile a running daemon holds says so in one line (exit 1) and leaves that daemon alone", async () => {
  await withScratch(async (s) => {
    const pid = await started(s, EXAMPLE, ["--port", "0"]);
    const r = await cli(EXAMPLE, [
      "run",
      "--pidfile",
      s.pidfile,
      "--port",
      "0",
    ]);
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stderr, new RegExp(`Already running \\(pid ${pid}\\)`));
    assert.doesNotMatch(r.stderr, /^\s+at /m, "no stack trace");
    assert.equal(readPid(s.pidfile), pid);
    assert.ok(alive(pid));
  });
});

Deno.test("run --pidfile: a SIGTERM sent as soon as the pidfile names it is a stop (exit 0, the pidfile removed)", async () => {
  await withScratch(async (s) => {
    for (let i = 0; i < 3; i++) {
      const run = foreground(s, EXAMPLE, [
        "--port",
        "0",
        "--pidfile",
        s.pidfile,
      ]);
      // Polled every millisecond, so that the signal lands in the start-up.
      await waitFor(
        "the pidfile to name it",
        () => readPid(s.pidfile) === run.child.pid,
        10_000,
        1,
      );
      run.child.kill("SIGTERM");
      assert.equal(await run.end(), 0, run.err);
      assert.equal(readPid(s.pidfile), undefined, run.err);
    }
  });
});

Deno.test("a stop requested while the daemon prepares ends it once prepare returns: main never runs, exit 0", async () => {
  await withScratch(async (s) => {
    const run = await preparing(s);
    run.child.kill("SIGTERM");
    assert.equal(await run.end(), 0, run.err);
    assert.match(run.err, /Stopping on SIGTERM/);
    assert.doesNotMatch(run.err, /Behavior slow-prepare/, "main ran");
    assert.equal(readPid(s.pidfile), undefined, run.err);
  });
});

for (const signal of ["SIGTERM", "SIGINT"] as const) {
  Deno.test(`run stays in the foreground, logs to stderr and stops gracefully on ${signal}`, async () => {
    await withScratch(async (s) => {
      const child = new Deno.Command(Deno.execPath(), {
        args: [
          "run",
          "-A",
          EXAMPLE,
          "run",
          "--port",
          "0",
          "--pidfile",
          s.pidfile,
        ],
        stdout: "piped",
        stderr: "piped",
        stdin: "null",
      }).spawn();
      s.track(child.pid);
      const reader = child.stderr.pipeThrough(new TextDecoderStream())
        .getReader();
      let err = "";
      while (!err.includes("Ready")) {
        const { value, done } = await reader.read();
        if (done) break;
        err += value;
      }
      assert.match(err, /Listening on/);
      assert.equal(
        readPid(s.pidfile),
        child.pid,
        "run with --pidfile takes it",
      );
      const port = listeningPort(err);
      assert.equal(
        (await fetch(`http://127.0.0.1:${port}/health`)).status,
        200,
      );
      child.kill(signal);
      const status = await child.status;
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        err += value;
      }
      assert.equal(status.code, 0, err);
      assert.match(err, new RegExp(`Stopping on ${signal}`));
      assert.throws(() => Deno.statSync(s.pidfile));
      await child.stdout.cancel();
    });
  });
}

Deno.test("start-stop-daemon --status and --stop --retry TERM/5/KILL/5 work with the pidfile", async () => {
  await withScratch(async (s) => {
    const pid = await started(s, EXAMPLE, ["--port", "0"]);
    const ssd = "/sbin/start-stop-daemon";
    const status = await sh(`${ssd} --status --pidfile ${shq(s.pidfile)}`);
    assert.equal(status.code, 0, status.stderr);
    const stop = await sh(
      `${ssd} --stop --pidfile ${shq(s.pidfile)} --retry TERM/5/KILL/5`,
    );
    assert.equal(stop.code, 0, stop.stderr);
    assert.ok(!alive(pid));
    assert.match(s.log(), /Stopped \(SIGTERM, exit 0/);
    assert.throws(
      () => Deno.statSync(s.pidfile),
      "the daemon removed its pidfile",
    );
    const after = await sh(`${ssd} --status --pidfile ${shq(s.pidfile)}`);
    assert.equal(after.code, 3);
  });
});
