/**
 * `start`: the detached daemon as the kernel sees it, readiness, start-up
 * failures, pidfile rules and racing starts.
 */
import assert from "node:assert/strict";
import { libc } from "../ffi/mod.ts";
import {
  alive,
  BEHAVE,
  cli,
  cliRunning,
  denoLine,
  EXAMPLE,
  inMask,
  listeningPort,
  procEnviron,
  procFds,
  procStat,
  procStatus,
  readPid,
  type Scratch,
  sh,
  shq,
  started,
  waitFor,
  withScratch,
} from "./helpers.ts";

Deno.test("start from a terminal detaches into a new session as a non-leader, with a clean process state", async () => {
  await withScratch(async (s) => {
    Deno.writeTextFileSync(`${s.dir}/inherited`, "");
    // From a real terminal (script gives the caller a pty as controlling
    // terminal), with fd 9 open, HUP/QUIT/USR2 ignored and a signal blocked.
    const line = [
      `exec 9>${shq(`${s.dir}/inherited`)}`,
      `trap '' HUP QUIT USR2`,
      `echo "caller-sid $(ps -o sid= $$)"`,
      `exec ${
        denoLine(EXAMPLE, [
          "start",
          ...s.paths,
          "--port",
          "0",
          "--umask",
          "0037",
        ])
      }`,
    ].join("; ");
    const r = await sh(`script -qec ${shq(line)} /dev/null`, { cwd: s.dir });
    const pid = s.track();
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.ok(pid !== undefined && alive(pid), "daemon runs");
    assert.match(r.stdout, new RegExp(`started \\(pid ${pid}\\)`));
    const callerSid = Number(r.stdout.match(/caller-sid\s+(\d+)/)![1]);

    const st = procStat(pid);
    assert.notEqual(st.session, pid, "not a session leader (second spawn)");
    assert.notEqual(st.session, callerSid, "a new session");
    assert.equal(st.ttyNr, 0, "no controlling terminal");
    assert.notEqual(st.ppid, Deno.pid);
    assert.ok(!alive(st.session), "the session leader has exited");
    assert.equal(Deno.readLinkSync(`/proc/${pid}/cwd`), "/");
    assert.equal(procStatus(pid, "Umask"), "0037");

    const fds = procFds(pid);
    assert.equal(fds.get(0), "/dev/null");
    assert.equal(fds.get(1), s.logFile);
    assert.equal(fds.get(2), s.logFile);
    for (const [fd, target] of fds) {
      assert.notEqual(
        target,
        `${s.dir}/inherited`,
        `fd ${fd} leaked from the caller`,
      );
      assert.ok(
        !target.includes("denod-stage"),
        `stage memfd still open on fd ${fd}`,
      );
      assert.ok(!target.startsWith("/dev/pts"), `terminal on fd ${fd}`);
    }

    assert.equal(
      BigInt(`0x${procStatus(pid, "SigBlk")}`),
      0n,
      "empty signal mask",
    );
    const ign = procStatus(pid, "SigIgn");
    for (const [name, n] of [["HUP", 1], ["QUIT", 3], ["USR2", 12]] as const) {
      assert.ok(!inMask(ign, n), `SIG${name} still ignored`);
    }
    assert.ok(inMask(procStatus(pid, "SigCgt"), 1), "SIGHUP handled");

    const env = procEnviron(pid);
    assert.ok(!env.some((e) => /denod/i.test(e.split("=")[0])), env.join("\n"));

    // The service answers as soon as start has returned.
    const port = listeningPort(s.log());
    const res = await fetch(`http://127.0.0.1:${port}/health`);
    const body = await res.json();
    assert.equal(res.status, 200);
    assert.equal(body.pid, pid);
    assert.equal(body.version, "0.1.0");
    assert.equal(typeof body.uptime, "number");
    await waitFor("request log line", () => s.log().includes("GET /health"));
  });
});

Deno.test("start returns only when the pidfile is complete and the payload said ready", async () => {
  await withScratch(async (s) => {
    const r = await cli(EXAMPLE, ["start", ...s.paths, "--port", "0"]);
    const pid = s.track();
    assert.equal(r.code, 0, r.stderr);
    assert.equal(Deno.readTextFileSync(s.pidfile), `${pid}\n`);
    assert.equal(Deno.statSync(s.pidfile).mode! & 0o777, 0o644);
    assert.equal(Deno.statSync(s.logFile).mode! & 0o777, 0o640);
    // The kernel's own view: an exclusive flock on the pidfile's inode.
    const ino = Deno.statSync(s.pidfile).ino!;
    const locks = Deno.readTextFileSync("/proc/locks");
    assert.match(
      locks,
      new RegExp(
        `FLOCK\\s+ADVISORY\\s+WRITE\\s+\\d+\\s+[0-9a-f]+:[0-9a-f]+:${ino}\\s`,
      ),
    );
    const log = s.log();
    assert.ok(log.indexOf("Listening on") < log.indexOf("Ready"), log);
  });
});

Deno.test("the payload's children see no stage marker, no service-manager variables and no inherited descriptors", async () => {
  await withScratch(async (s) => {
    const report = `${s.dir}/child.txt`;
    // A real notify socket, so that the daemon holds a socket open for it.
    const socket = `${s.dir}/notify.sock`;
    const listener = libc().bindDatagram(socket);
    try {
      const r = await cli(BEHAVE, [
        "start",
        ...s.paths,
        "--behavior",
        "spawn-child",
        "--report",
        report,
      ], {
        env: { NOTIFY_SOCKET: socket, WATCHDOG_USEC: "5000000" },
      });
      s.track();
      assert.equal(r.code, 0, r.stderr);
      const [env, fds] = Deno.readTextFileSync(report).split("FDS\n");
      assert.ok(
        !/denod/i.test(env.split("\n").map((l) => l.split("=")[0]).join(" ")),
        env,
      );
      assert.doesNotMatch(
        env,
        /^(NOTIFY_SOCKET|WATCHDOG_USEC|WATCHDOG_PID|LISTEN_\w+)=/m,
      );
      // sh's own 0-2 and the fd ls opens for /proc/self/fd: nothing else.
      const numbers = fds.trim().split("\n").map(Number).filter((n) => n > 2);
      assert.ok(numbers.length <= 1, `child inherited descriptors: ${numbers}`);
    } finally {
      libc().close(listener);
    }
  });
});

Deno.test("relative paths mean relative to the directory start was run from", async () => {
  await withScratch(async (s) => {
    const r = await cli(EXAMPLE, [
      "start",
      "--pidfile",
      "./rel.pid",
      "--log-file",
      "rel.log",
      "--port",
      "0",
    ], {
      cwd: s.dir,
    });
    const pid = s.track(readPid(`${s.dir}/rel.pid`));
    assert.equal(r.code, 0, r.stderr);
    assert.equal(Deno.readLinkSync(`/proc/${pid}/cwd`), "/");
    assert.equal(Deno.readLinkSync(`/proc/${pid}/fd/1`), `${s.dir}/rel.log`);
    const stop = await cli(EXAMPLE, ["stop", "--pidfile", "rel.pid"], {
      cwd: s.dir,
    });
    assert.equal(stop.code, 0, stop.stderr);
    assert.ok(!alive(pid!));
  });
});

Deno.test("start when already running says so, exits 0 and starts nothing", async () => {
  await withScratch(async (s) => {
    const first = await cli(EXAMPLE, ["start", ...s.paths, "--port", "0"]);
    const pid = s.track();
    assert.equal(first.code, 0, first.stderr);
    const second = await cli(EXAMPLE, ["start", ...s.paths, "--port", "0"]);
    assert.equal(second.code, 0, second.stderr);
    assert.match(second.stdout, new RegExp(`already running \\(pid ${pid}\\)`));
    assert.equal(readPid(s.pidfile), pid);
    assert.equal(
      (s.log().match(/ Ready /g) ?? []).length,
      1,
      "one daemon only",
    );
  });
});

Deno.test("eight racing starts leave exactly one daemon and all exit 0", async () => {
  await withScratch(async (s) => {
    const results = await Promise.all(
      Array.from(
        { length: 8 },
        () => cli(EXAMPLE, ["start", ...s.paths, "--port", "0"]),
      ),
    );
    const pid = s.track();
    for (const r of results) assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.equal(
      results.filter((r) => /started \(pid/.test(r.stdout)).length,
      1,
    );
    for (const r of results) {
      assert.match(r.stdout, new RegExp(`\\(pid ${pid}\\)`));
    }
    assert.equal((s.log().match(/ Ready /g) ?? []).length, 1, s.log());
    const ps = await sh(`pgrep -f ${shq(s.pidfile)}`);
    assert.deepEqual(ps.stdout.trim().split("\n").map(Number), [pid]);
  });
});

Deno.test("a start-up failure reaches the terminal with the daemon's own error, leaving nothing behind", async () => {
  await withScratch(async (s) => {
    const busy = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    try {
      const r = await cli(EXAMPLE, [
        "start",
        ...s.paths,
        "--port",
        String(busy.addr.port),
      ]);
      assert.equal(r.code, 1);
      assert.match(r.stderr, /address already in use/i);
      assert.doesNotMatch(r.stderr, /\n\s+at /, "no stack trace");
      assert.ok(!Deno.statSync(s.dir).isFile);
      assert.throws(() => Deno.statSync(s.pidfile), "no pidfile");
      const ps = await sh(`pgrep -f ${shq(s.pidfile)}`);
      assert.equal(ps.stdout.trim(), "", "no process left");
    } finally {
      busy.close();
    }
  });
});

for (
  const [behavior, expected] of [
    ["throw-before-ready", /Cannot open the frobnicator/],
    // Every line of the message, and no terminal escape, reaches the terminal.
    ["throw-escapes-before-ready", /^behave: bad \/ thing\n$/],
    ["return-before-ready", /returned before it was ready/],
    ["exit-before-ready", /exited with status 3 before it was ready/],
    ["lose-pidfile", /Lost the pidfile: ".*d\.pid" was removed or replaced/],
  ] as const
) {
  Deno.test(`start reports a daemon that fails before ready (${behavior})`, async () => {
    await withScratch(async (s) => {
      const r = await cli(BEHAVE, [
        "start",
        ...s.paths,
        "--behavior",
        behavior,
      ]);
      assert.equal(r.code, 1, r.stdout);
      assert.match(r.stderr, expected);
      assert.equal(r.stderr.split("\n").length, 2, "one line");
      // An exit record saying why may stay (records_test.ts).
      assert.deepEqual(
        [...Deno.readDirSync(s.dir)].map((e) => e.name).filter((n) =>
          n !== "d.exit"
        ),
        ["d.log"],
        "no pidfile or state file left",
      );
      const ps = await sh(`pgrep -f ${shq(s.pidfile)}`);
      assert.equal(ps.stdout.trim(), "");
    });
  });
}

Deno.test("start gives up after --ready-timeout and stops the half-started daemon", async () => {
  await withScratch(async (s) => {
    const t0 = performance.now();
    const r = await cli(BEHAVE, [
      "start",
      ...s.paths,
      "--behavior",
      "never-ready",
      "--ready-timeout",
      "1.5",
    ]);
    const took = performance.now() - t0;
    assert.equal(r.code, 1);
    assert.match(r.stderr, /not ready within 1\.5 s/);
    assert.ok(took >= 1500, `gave up after ${took} ms`);
    assert.throws(() => Deno.statSync(s.pidfile));
    const ps = await sh(`pgrep -f ${shq(s.pidfile)}`);
    assert.equal(ps.stdout.trim(), "", "the half-started daemon was stopped");
  });
});

/**
 * `start` of a daemon that is never ready, once its payload runs.
 *
 * @returns The running `start`, and the daemon's pid.
 */
async function startedNeverReady(
  s: Scratch,
): Promise<{ caller: ReturnType<typeof cliRunning>; daemon: number }> {
  const caller = cliRunning(s, BEHAVE, [
    "start",
    ...s.paths,
    "--behavior",
    "never-ready",
  ]);
  await waitFor(
    "the daemon's pid in the pidfile",
    () => readPid(s.pidfile) !== undefined,
  );
  const daemon = s.track()!;
  await waitFor(
    "the daemon running its payload",
    () => s.log().includes("Behavior never-ready"),
  );
  return { caller, daemon };
}

Deno.test("start names the signal that killed the daemon before it was ready (an OOM kill, a crash)", async () => {
  await withScratch(async (s) => {
    const { caller, daemon } = await startedNeverReady(s);
    Deno.kill(daemon, "SIGKILL");
    const out = await caller.result;
    assert.equal(out.code, 1);
    assert.match(
      out.stderr,
      /^behave: The daemon was killed by SIGKILL before it was ready \(log: .*d\.log\)\n$/,
    );
    assert.throws(() => Deno.statSync(s.pidfile));
  });
});

Deno.test("Ctrl-C on a waiting start stops the half-started daemon and removes the pidfile", async () => {
  await withScratch(async (s) => {
    const { caller, daemon } = await startedNeverReady(s);
    Deno.kill(caller.pid, "SIGINT");
    const out = await caller.result;
    assert.equal(out.code, 1);
    assert.match(out.stderr, /Interrupted: the starting daemon was stopped/);
    assert.ok(!alive(daemon), "the daemon was stopped");
    assert.throws(() => Deno.statSync(s.pidfile));
  });
});

Deno.test("start refuses a pidfile that is a symlink and leaves its target untouched", async () => {
  await withScratch(async (s) => {
    const target = `${s.dir}/precious`;
    Deno.writeTextFileSync(target, "keep me\n");
    Deno.symlinkSync(target, s.pidfile);
    const r = await cli(EXAMPLE, ["start", ...s.paths, "--port", "0"]);
    assert.equal(r.code, 2);
    assert.match(
      r.stderr,
      /Refusing pidfile ".*d\.pid": it is a symbolic link/,
    );
    assert.equal(Deno.readTextFileSync(target), "keep me\n");
    assert.ok(Deno.lstatSync(s.pidfile).isSymlink);
  });
});

Deno.test("an argument that is not UTF-8 is refused, never rewritten; U+FFFD itself is accepted", async () => {
  await withScratch(async (s) => {
    // Deno decodes argv lossily: a\xff.pid would arrive as a\ufffd.pid.
    const rewritten = `${s.dir}/a\ufffd.pid`;
    try {
      const r = await sh(
        `${
          denoLine(EXAMPLE, ["start"])
        } --pidfile $'${s.dir}/a\\xff.pid' --log-file ${shq(s.logFile)}`,
      );
      assert.equal(r.code, 2, r.stdout + r.stderr);
      assert.equal(
        r.stderr.split("\n")[0],
        `denod-example: Argument "${s.dir}/a\\xff.pid" is not valid UTF-8`,
      );
      assert.deepEqual([...Deno.readDirSync(s.dir)], [], "nothing created");
    } finally {
      s.track(readPid(rewritten));
    }
    const genuine = await cli(EXAMPLE, ["status", "--pidfile", rewritten]);
    assert.equal(genuine.code, 3, genuine.stderr);
  });
});

Deno.test("a --chdir that is not an existing directory is a usage error for start and run, before anything starts", async () => {
  await withScratch(async (s) => {
    Deno.writeTextFileSync(`${s.dir}/file`, "");
    for (const command of ["start", "run"]) {
      for (const dir of [`${s.dir}/nope`, `${s.dir}/file`]) {
        const r = await cli(EXAMPLE, [
          command,
          ...s.paths,
          "--chdir",
          dir,
          "--port",
          "0",
        ]);
        assert.equal(r.code, 2, `${command} ${dir}: ${r.stderr}`);
        assert.deepEqual(r.stderr.trimEnd().split("\n"), [
          `denod-example: Cannot use --chdir ${
            JSON.stringify(dir)
          }: it is not an existing directory`,
          `Usage: denod-example <command> [options]; try "help"`,
        ]);
        assert.throws(() => Deno.statSync(s.pidfile), "no pidfile");
      }
    }
    // restart refuses it before stopping the daemon that runs.
    const pid = await started(s, EXAMPLE, ["--port", "0"]);
    const r = await cli(EXAMPLE, [
      "restart",
      ...s.paths,
      "--chdir",
      `${s.dir}/nope`,
    ]);
    assert.equal(r.code, 2, r.stdout + r.stderr);
    assert.equal(r.stdout, "");
    assert.ok(alive(pid), "the running daemon was left alone");
  });
});

Deno.test("start reports a missing pidfile directory and an unusable log file before detaching", async () => {
  await withScratch(async (s) => {
    const noDir = await cli(EXAMPLE, [
      "start",
      "--pidfile",
      `${s.dir}/nope/d.pid`,
      "--log-file",
      s.logFile,
    ]);
    assert.equal(noDir.code, 1);
    assert.match(
      noDir.stderr,
      /Cannot open pidfile ".*nope\/d\.pid": directory ".*\/nope" does not exist/,
    );

    Deno.symlinkSync("/etc/passwd", `${s.dir}/evil.log`);
    const link = await cli(EXAMPLE, [
      "start",
      "--pidfile",
      s.pidfile,
      "--log-file",
      `${s.dir}/evil.log`,
    ]);
    assert.equal(link.code, 2);
    assert.match(
      link.stderr,
      /Refusing log file ".*evil\.log": it is a symbolic link/,
    );

    const dir = await cli(EXAMPLE, [
      "start",
      "--pidfile",
      s.pidfile,
      "--log-file",
      s.dir,
    ]);
    assert.equal(dir.code, 2);
    assert.match(dir.stderr, /Refusing log file ".*": it is a directory/);
    assert.throws(
      () => Deno.statSync(s.pidfile),
      "no pidfile left by a refused start",
    );
  });
});

Deno.test("a stale pidfile (daemon killed with SIGKILL) is taken over", async () => {
  await withScratch(async (s) => {
    const first = await cli(EXAMPLE, ["start", ...s.paths, "--port", "0"]);
    const old = s.track()!;
    assert.equal(first.code, 0);
    Deno.kill(old, "SIGKILL");
    await waitFor("old daemon gone", () => !alive(old));
    assert.equal(readPid(s.pidfile), old, "the pidfile outlived its daemon");
    const second = await cli(EXAMPLE, ["start", ...s.paths, "--port", "0"]);
    const pid = s.track()!;
    assert.equal(second.code, 0, second.stderr);
    assert.notEqual(pid, old);
    assert.ok(alive(pid));
  });
});
