/**
 * Service managers: the sd_notify messages a real datagram listener
 * receives (path and abstract sockets, start → reload → stop), the watchdog's
 * cadence and its silence while the event loop is blocked, the variables
 * hidden from the payload's children, a real s6-supervise, and the
 * generated systemd unit checked by systemd-analyze.
 */
import assert from "node:assert/strict";
import { libc } from "../ffi/mod.ts";
import { UsageError } from "../src/errors.ts";
import {
  BEHAVE,
  cli,
  denoLine,
  EXAMPLE,
  listeningPort,
  readPid,
  sh,
  shq,
  waitFor,
  withScratch,
} from "./helpers.ts";

const c = libc();

/** Skip a test whose peer program is missing, except under CI, which installs them all. */
async function needs(program: string): Promise<boolean> {
  const found = (await sh(`command -v ${program}`)).stdout.trim() !== "";
  return !found && !Deno.env.get("CI");
}

/** A datagram listener that records every message with the time it arrived. */
function listen(address: string) {
  const fd = c.bindDatagram(address);
  const messages: { at: number; text: string }[] = [];
  let open = true;
  const done = (async () => {
    while (open) {
      const m = await c.receiveDatagram(fd, 100);
      if (m !== null) {
        messages.push({
          at: performance.now(),
          text: new TextDecoder().decode(m),
        });
      }
    }
  })();
  return {
    messages,
    texts: () => messages.map((m) => m.text),
    async close() {
      open = false;
      await done;
      c.close(fd);
    },
  };
}

Deno.test("start → reload → stop sends READY with MAINPID, RELOADING, READY, STOPPING to a path socket", async () => {
  await withScratch(async (s) => {
    const socket = `${s.dir}/notify.sock`;
    const l = listen(socket);
    try {
      const env = { NOTIFY_SOCKET: socket };
      const r = await cli(EXAMPLE, ["start", ...s.paths, "--port", "0"], {
        env,
      });
      const pid = s.track()!;
      assert.equal(r.code, 0, r.stderr);
      const reload = await cli(EXAMPLE, ["reload", ...s.paths]);
      assert.equal(reload.code, 0, reload.stdout + reload.stderr);
      const stop = await cli(EXAMPLE, ["stop", ...s.paths]);
      assert.equal(stop.code, 0, stop.stdout + stop.stderr);
      await waitFor("STOPPING=1", () => l.texts().includes("STOPPING=1"));
      const texts = l.texts();
      assert.match(
        texts[0],
        /^STATUS=Listening on http:\/\/127\.0\.0\.1:\d+\/$/,
      );
      assert.equal(texts[1], `READY=1\nMAINPID=${pid}`);
      assert.match(texts[2], /^RELOADING=1\nMONOTONIC_USEC=\d+$/);
      const usec = BigInt(texts[2].split("=")[2]);
      const now = c.monotonicMicros();
      assert.ok(
        usec <= now && now - usec < 60_000_000n,
        "MONOTONIC_USEC is CLOCK_MONOTONIC",
      );
      assert.equal(texts[3], `READY=1\nMAINPID=${pid}`);
      assert.equal(texts[4], "STOPPING=1");
      assert.equal(texts.length, 5, texts.join(" | "));
    } finally {
      await l.close();
    }
  });
});

Deno.test("run reports READY=1 (no MAINPID) and STOPPING=1 to an abstract socket", async () => {
  await withScratch(async (s) => {
    const socket = `@denod-test-${crypto.randomUUID()}`;
    const l = listen(socket);
    const child = new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", EXAMPLE, "run", "--port", "0"],
      env: { NOTIFY_SOCKET: socket },
      stdout: "null",
      stderr: "null",
    }).spawn();
    s.track(child.pid);
    try {
      await waitFor("READY=1", () => l.texts().includes("READY=1"));
      child.kill("SIGTERM");
      assert.equal((await child.status).code, 0);
      await waitFor("STOPPING=1", () => l.texts().includes("STOPPING=1"));
      assert.deepEqual(l.texts().filter((t) => !t.startsWith("STATUS=")), [
        "READY=1",
        "STOPPING=1",
      ]);
    } finally {
      await l.close();
    }
  });
});

Deno.test("the watchdog pings every half WATCHDOG_USEC and falls silent while the event loop is blocked", async () => {
  await withScratch(async (s) => {
    const socket = `${s.dir}/notify.sock`;
    const l = listen(socket);
    const child = new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", BEHAVE, "run", "--behavior", "block-loop"],
      env: { NOTIFY_SOCKET: socket, WATCHDOG_USEC: "400000" },
      stdout: "null",
      stderr: "piped",
    }).spawn();
    s.track(child.pid);
    try {
      const err = child.stderr.pipeThrough(new TextDecoderStream()).getReader();
      let log = "";
      while (!log.includes("Event loop free again")) {
        const { value, done } = await err.read();
        if (done) break;
        log += value;
      }
      await new Promise((r) => setTimeout(r, 700)); // pings resume
      child.kill("SIGTERM");
      await child.status;
      await err.cancel();
      const pings = l.messages.filter((m) => m.text === "WATCHDOG=1").map((m) =>
        m.at
      );
      const gaps = pings.slice(1).map((t, i) => t - pings[i]);
      const longest = Math.max(...gaps);
      const usual = gaps.filter((g) => g < 1000).sort((a, b) => a - b);
      const median = usual[Math.floor(usual.length / 2)];
      assert.ok(
        median > 120 && median < 400,
        `median interval ${median} ms (expected ~200)`,
      );
      assert.ok(
        longest >= 1300,
        `longest gap ${longest} ms: pings went on while the loop was blocked`,
      );
      assert.ok(
        pings[pings.length - 1] > pings[0] + longest,
        "pings resumed after the block",
      );
    } finally {
      await l.close();
    }
  });
});

Deno.test("a watchdog meant for another process is ignored; start hands its own watchdog to the daemon", async () => {
  await withScratch(async (s) => {
    const socket = `${s.dir}/notify.sock`;
    const l = listen(socket);
    try {
      // WATCHDOG_PID names someone else: no pings from the daemon.
      const other = await cli(EXAMPLE, ["start", ...s.paths, "--port", "0"], {
        env: {
          NOTIFY_SOCKET: socket,
          WATCHDOG_USEC: "200000",
          WATCHDOG_PID: "1",
        },
      });
      assert.equal(other.code, 0, other.stderr);
      s.track();
      await new Promise((r) => setTimeout(r, 500));
      assert.ok(!l.texts().includes("WATCHDOG=1"), l.texts().join(" | "));
      assert.equal((await cli(EXAMPLE, ["stop", ...s.paths])).code, 0);

      // WATCHDOG_PID names the start command itself ($$ survives exec).
      const line = `NOTIFY_SOCKET=${shq(socket)} WATCHDOG_USEC=200000 sh -c ${
        shq(
          `WATCHDOG_PID=$$ exec ${
            denoLine(EXAMPLE, ["start", ...s.paths, "--port", "0"])
          }`,
        )
      }`;
      const own = await sh(line);
      assert.equal(own.code, 0, own.stderr);
      const pid = s.track()!;
      await waitFor(
        "pings from the daemon",
        () => l.texts().filter((t) => t === "WATCHDOG=1").length >= 3,
      );
      assert.ok(l.texts().includes(`READY=1\nMAINPID=${pid}`));
    } finally {
      await l.close();
    }
  });
});

Deno.test("ctx.extendTimeout() sends EXTEND_TIMEOUT_USEC; a failed start sends STATUS and ERRNO", async () => {
  await withScratch(async (s) => {
    const socket = `${s.dir}/notify.sock`;
    const l = listen(socket);
    const busy = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    try {
      const env = { NOTIFY_SOCKET: socket };
      const ok = await cli(BEHAVE, [
        "start",
        ...s.paths,
        "--behavior",
        "extend-start",
      ], { env });
      assert.equal(ok.code, 0, ok.stderr);
      s.track();
      await waitFor(
        "READY",
        () => l.texts().some((t) => t.startsWith("READY=1")),
      );
      assert.equal(l.texts()[0], "EXTEND_TIMEOUT_USEC=7500000");
      assert.equal((await cli(BEHAVE, ["stop", ...s.paths])).code, 0);

      const failed = await cli(EXAMPLE, [
        "start",
        ...s.paths,
        "--port",
        String(busy.addr.port),
      ], { env });
      assert.equal(failed.code, 1);
      await waitFor("ERRNO", () => l.texts().some((t) => t.includes("ERRNO=")));
      const last = l.texts().find((t) => t.includes("ERRNO="))!;
      assert.match(
        last,
        /^STATUS=Start-up failed: .*[Aa]ddress already in use.*\nERRNO=98$/,
      );
    } finally {
      busy.close();
      await l.close();
    }
  });
});

Deno.test("--notify-fd is for run only, and must name an inherited pipe", async () => {
  const r = await cli(EXAMPLE, ["start", "--notify-fd", "3"]);
  assert.equal(r.code, 2);
  assert.match(r.stderr, /--notify-fd works with run only/);
  // Neither a closed descriptor nor one of the runtime's own (a low number
  // the caller did not pass) may be used.
  for (const fd of ["9", "999"]) {
    const bad = await cli(EXAMPLE, ["run", "--port", "0", "--notify-fd", fd]);
    assert.equal(bad.code, 1, bad.stderr);
    assert.match(
      bad.stderr,
      new RegExp(`Cannot use --notify-fd ${fd}: it is not an open pipe`),
    );
  }
});

Deno.test({
  name:
    "s6-supervise: s6-svwait -U returns once the daemon is ready, s6-svc -d stops it gracefully",
  ignore: await needs("s6-supervise"),
  fn: () =>
    withScratch(async (s) => {
      const service = `${s.dir}/svc`;
      Deno.mkdirSync(service);
      Deno.writeTextFileSync(`${service}/notification-fd`, "3\n");
      Deno.writeTextFileSync(
        `${service}/run`,
        `#!/bin/sh\nexec 2>>${shq(s.logFile)}\nexec ${
          denoLine(EXAMPLE, ["run", "--port", "0", "--notify-fd", "3"])
        }\n`,
        { mode: 0o755 },
      );
      const supervise = new Deno.Command("s6-supervise", {
        args: [service],
        stdout: "null",
        stderr: "null",
      })
        .spawn();
      s.track(supervise.pid);
      try {
        // s6-svwait reads the status file s6-supervise creates as it starts.
        await waitFor("s6-supervise's status file", () => {
          try {
            return Deno.statSync(`${service}/supervise/status`).isFile;
          } catch {
            return false;
          }
        });
        const up = await sh(`s6-svwait -U -t 20000 ${shq(service)}`);
        assert.equal(up.code, 0, up.stderr);
        // Ready means answering: the port is in the log already.
        const res = await fetch(
          `http://127.0.0.1:${listeningPort(s.log())}/health`,
        );
        const pid = (await res.json()).pid;
        s.track(pid);
        const down = await sh(
          `s6-svc -d ${shq(service)} && s6-svwait -D -t 20000 ${shq(service)}`,
        );
        assert.equal(down.code, 0, down.stderr);
        assert.match(s.log(), /Stopping on SIGTERM/);
        assert.match(s.log(), /Stopped \(SIGTERM, exit 0/);
        await sh(`s6-svc -x ${shq(service)}`);
        assert.equal((await supervise.status).code, 0);
      } finally {
        try {
          supervise.kill("SIGKILL");
        } catch {
          // already gone
        }
      }
    }),
});

Deno.test({
  name:
    "unit prints a Type=notify unit that systemd-analyze verify accepts without a word",
  ignore: await needs("systemd-analyze"),
  fn: () =>
    withScratch(async (s) => {
      const r = await cli(EXAMPLE, [
        "unit",
        "--port",
        "8080",
        "--user",
        "daemon",
        "--pidfile",
        "rel/d.pid",
        "--config",
        "my conf.json",
      ], { cwd: s.dir });
      assert.equal(r.code, 0, r.stderr);
      const unit = r.stdout;
      const exec = unit.match(/^ExecStart=(.*)$/m)![1];
      assert.ok(exec.startsWith(`${Deno.execPath()} run -A `), exec);
      assert.ok(exec.includes(" run --port 8080 --pidfile "), exec);
      assert.ok(
        exec.includes(`${s.dir}/rel/d.pid`),
        "relative paths made absolute",
      );
      assert.ok(exec.includes(`"${s.dir}/my conf.json"`), "spaces quoted");
      assert.doesNotMatch(exec, /--user|unit/);
      for (
        const line of [
          "Type=notify",
          "ExecReload=/bin/kill -HUP $MAINPID",
          "Restart=on-failure",
          "User=daemon",
          "NoNewPrivileges=yes",
          "ProtectSystem=strict",
          "PrivateTmp=yes",
          "RuntimeDirectory=denod-example",
          "UMask=0027",
          "LimitCORE=0",
        ]
      ) {
        assert.ok(unit.split("\n").includes(line), line);
      }
      assert.match(unit, /^ProtectHome=(yes|read-only)$/m);
      const file = `${s.dir}/denod-example.service`;
      Deno.writeTextFileSync(file, unit);
      const verify = await sh(`systemd-analyze verify ${shq(file)}`);
      assert.equal(verify.code, 0, verify.stderr);
      assert.equal(
        (verify.stdout + verify.stderr).split("\n").filter((l) =>
          l.includes("denod-example")
        ).join("\n"),
        "",
      );

      // --restart becomes the manager's own policy, not part of ExecStart.
      const restarting = await cli(EXAMPLE, [
        "unit",
        "--restart",
        "always",
        "--restart-delay",
        "2.5",
        "--max-restarts",
        "3",
      ]);
      assert.equal(restarting.code, 0, restarting.stderr);
      const lines = restarting.stdout.split("\n");
      assert.ok(lines.includes("Restart=always"), restarting.stdout);
      assert.ok(lines.includes("RestartSec=2.5"), restarting.stdout);
      assert.doesNotMatch(
        restarting.stdout.match(/^ExecStart=(.*)$/m)![1],
        /--restart|--max-restarts/,
      );
      Deno.writeTextFileSync(file, restarting.stdout);
      const again = await sh(`systemd-analyze verify ${shq(file)}`);
      assert.equal(again.code, 0, again.stderr);

      const bare = await cli(EXAMPLE, ["unit"]);
      assert.doesNotMatch(
        bare.stdout,
        /ReadWritePaths/,
        "no pidfile under run unless given",
      );

      const plist = await cli(EXAMPLE, [
        "unit",
        "--format",
        "launchd",
        "--user",
        "daemon",
      ]);
      assert.equal(plist.code, 0);
      assert.match(
        plist.stdout,
        /<key>Label<\/key>\s*<string>denod-example<\/string>/,
      );
      assert.match(
        plist.stdout,
        /<key>UserName<\/key>\s*<string>daemon<\/string>/,
      );
      assert.ok(plist.stdout.includes(`<string>${Deno.execPath()}</string>`));
      assert.match(plist.stdout, /<key>SuccessfulExit<\/key>\s*<false\/>/);
      const always = await cli(EXAMPLE, [
        "unit",
        "--format",
        "launchd",
        "--restart",
        "always",
      ]);
      assert.match(always.stdout, /<key>KeepAlive<\/key>\s*<true\/>/);
      assert.equal(
        readPid(`${s.dir}/rel/d.pid`),
        undefined,
        "unit starts nothing",
      );
    }),
});

Deno.test("unit refuses a newline in any text it would write: an option's value, the program's own path, the daemon's description", async () => {
  await withScratch(async (s) => {
    const injected = await cli(EXAMPLE, [
      "unit",
      "--pidfile",
      "/x\nExecStartPre=/bin/sh -c id",
    ]);
    assert.equal(injected.code, 2, injected.stdout);
    assert.equal(injected.stdout, "");
    assert.match(
      injected.stderr,
      /^denod-example: Invalid value for --pidfile: "\/x\\nExecStartPre=\/bin\/sh -c id" \(expected no control characters\)\n/,
    );

    // The program reached through a directory whose name has a newline.
    const dir = `${s.dir}/a\nExecStartPre=id`;
    Deno.symlinkSync(new URL("../", import.meta.url).pathname, dir);
    const path = await cli(`${dir}/daemon.ts`, ["unit"]);
    assert.equal(path.code, 2, path.stdout);
    assert.equal(path.stdout, "");
    assert.match(path.stderr, /Cannot write ExecStart= of the unit: ".*\\n/);
  });

  const { systemdUnit, launchdPlist } = await import("../src/unit.ts");
  const core = {
    umask: 0o027,
    noNewPrivs: true,
    noCoreDumps: true,
    stopTimeout: 10,
    pidfile: undefined,
  } as never;
  for (const make of [systemdUnit, launchdPlist]) {
    for (
      const input of [
        { description: "My daemon\nExecStartPre=/bin/sh -c id" },
        { user: "daemon\nExecStartPre=/bin/sh -c id" },
        { group: "daemon\rx" },
        { command: ["/usr/bin/myd", "run", "--x=\u001b[2J"] },
      ]
    ) {
      assert.throws(
        () =>
          make({
            name: "myd",
            description: "My daemon",
            command: ["/usr/bin/myd", "run"],
            core,
            ...input,
          }),
        (err: unknown) =>
          err instanceof UsageError && /control character/.test(err.message),
        JSON.stringify(input),
      );
    }
  }
});

Deno.test({
  name:
    "unit quotes paths with spaces, quotes and backslashes and escapes % specifiers, which systemd-analyze verify reads back without a word",
  ignore: await needs("systemd-analyze"),
  fn: () =>
    withScratch(async (s) => {
      const file = `${s.dir}/denod-example.service`;
      /** systemd-analyze's complaints about the unit file. */
      const verify = async (unit: string) => {
        Deno.writeTextFileSync(file, unit);
        const r = await sh(`systemd-analyze verify ${shq(file)}`);
        assert.equal(r.code, 0, r.stderr);
        return (r.stdout + r.stderr).split("\n").filter((l) =>
          l.includes(file)
        );
      };
      const spaced = await cli(EXAMPLE, [
        "unit",
        // A system unit, whoever runs the test.
        "--user",
        "daemon",
        "--pidfile",
        "/srv/my dir/x.pid",
      ]);
      assert.equal(spaced.code, 0, spaced.stderr);
      assert.ok(
        spaced.stdout.split("\n").includes(`ReadWritePaths="/srv/my dir"`),
        spaced.stdout,
      );
      assert.deepEqual(await verify(spaced.stdout), []);

      const odd = await cli(EXAMPLE, [
        "unit",
        // A system unit, whoever runs the test.
        "--user",
        "daemon",
        "--pidfile",
        `/srv/50%Q "q" \\b/x.pid`,
      ]);
      assert.equal(odd.code, 0, odd.stderr);
      assert.ok(
        odd.stdout.split("\n").includes(
          `ReadWritePaths="/srv/50%%Q \\"q\\" \\\\b"`,
        ),
        odd.stdout,
      );
      assert.deepEqual(await verify(odd.stdout), []);

      // What the unit says itself: the daemon's description, the user.
      const { systemdUnit } = await import("../src/unit.ts");
      const unit = systemdUnit({
        name: "myd",
        description: "Serves 100% of /srv",
        command: ["/bin/true", "50%Q"],
        user: "daemon%Q",
        core: {
          umask: 0o027,
          noNewPrivs: true,
          noCoreDumps: true,
          stopTimeout: 10,
          pidfile: "/srv/a%Qb/x.pid",
        } as never,
      });
      for (
        const line of [
          "Description=Serves 100%% of /srv",
          "ExecStart=/bin/true 50%%Q",
          "User=daemon%%Q",
          "ReadWritePaths=/srv/a%%Qb",
        ]
      ) {
        assert.ok(unit.split("\n").includes(line), `${line}\n${unit}`);
      }
      // Only the user's name, unknown here, draws a word.
      assert.deepEqual(
        (await verify(unit)).filter((l) => !/User/.test(l)),
        [],
      );
    }),
});
