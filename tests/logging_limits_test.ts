/**
 * Logging never blocks and never kills: a syslog that stops reading and a
 * log file on a full disk cost records, counted and shown by `status`, never
 * the daemon, its control commands or its supervisor.
 */
import assert from "node:assert/strict";
import { type Libc, libc, SysError } from "../ffi/mod.ts";
import { DroppedRecords, guardConsole } from "../src/dropped.ts";
import { type SyslogRecord, syslogSink } from "../src/syslog.ts";
import {
  alive,
  asRoot,
  BEHAVE,
  cli,
  type Scratch,
  sh,
  shq,
  waitFor,
  withScratch,
} from "./helpers.ts";

const STOP_TIMEOUT = 10;

/** The drop count `status` shows, asserting the daemon is running. */
async function droppedShown(s: Scratch, pidfile = s.pidfile): Promise<number> {
  const r = await cli(BEHAVE, ["status", "--pidfile", pidfile]);
  assert.equal(r.code, 0, r.stdout + r.stderr);
  const m = r.stdout.match(/, (\d+) log records? dropped/);
  return m ? Number(m[1]) : 0;
}

/** Wait until `status` shows drops, then shows more. */
async function assertGrowingCount(s: Scratch, pidfile?: string) {
  let first = 0;
  await waitFor(
    "dropped records in status",
    async () => (first = await droppedShown(s, pidfile)) > 0,
    20_000,
  );
  await waitFor(
    "a growing drop count",
    async () => (await droppedShown(s, pidfile)) > first,
    20_000,
  );
}

/** `stop`, asserting it neither needed SIGKILL nor waited for a timeout. */
async function assertCleanStop(s: Scratch, pidfile = s.pidfile) {
  const t0 = performance.now();
  const r = await cli(BEHAVE, [
    "stop",
    "--pidfile",
    pidfile,
    "--stop-timeout",
    String(STOP_TIMEOUT),
  ]);
  const seconds = (performance.now() - t0) / 1000;
  assert.equal(r.code, 0, r.stdout + r.stderr);
  assert.match(r.stdout, /stopped \((supervisor )?pid \d+\)$/m);
  assert.doesNotMatch(r.stdout, /killed/);
  // A supervisor kills its daemon only after the stop timeout, and says so.
  assert.ok(seconds < STOP_TIMEOUT, `stop took ${seconds} s`);
  assert.doesNotMatch(s.log(), /did not stop within/i);
  for (const pid of s.pids) assert.ok(!alive(pid), `pid ${pid} still runs`);
}

/** Options for a daemon that logs as fast as it can to the syslog at `socket`. */
function chattyInto(socket: string): string[] {
  return [
    "--behavior",
    "chatty",
    "--syslog",
    "--syslog-socket",
    socket,
    "--stop-timeout",
    String(STOP_TIMEOUT),
  ];
}

/** A bound Unix datagram socket that nobody ever reads: its queue fills and stays full. */
function deafSyslog(s: Scratch): { path: string; close: () => void } {
  const path = `${s.dir}/deaf.sock`;
  const fd = libc().bindDatagram(path);
  return { path, close: () => libc().close(fd) };
}

Deno.test("a syslog that stops reading costs records, counted in status, and never stalls the daemon: reload and stop still work", async () => {
  await withScratch(async (s) => {
    const deaf = deafSyslog(s);
    try {
      const r = await cli(BEHAVE, [
        "start",
        ...s.paths,
        ...chattyInto(deaf.path),
      ]);
      assert.equal(r.code, 0, r.stdout + r.stderr);
      s.track();
      await assertGrowingCount(s);
      const reload = await cli(BEHAVE, ["reload", ...s.paths]);
      assert.equal(reload.code, 0, reload.stdout + reload.stderr);
      await assertCleanStop(s);
      // Said once in the file, not one line per record.
      const log = s.log();
      assert.equal(
        (log.match(
          /syslog at .*deaf\.sock is not taking records \(its queue stays full\): dropping them; status shows the count/g,
        ) ?? []).length,
        1,
        log,
      );
      assert.doesNotMatch(log, /seq \d+/);
    } finally {
      deaf.close();
    }
  });
});

Deno.test("under a --restart supervisor, a syslog that stops reading stalls neither process, and status counts the daemon's drops", async () => {
  await withScratch(async (s) => {
    const deaf = deafSyslog(s);
    try {
      const r = await cli(BEHAVE, [
        "start",
        ...s.paths,
        ...chattyInto(deaf.path),
        "--restart",
        "on-failure",
      ]);
      assert.equal(r.code, 0, r.stdout + r.stderr);
      const [, child, supervisor] = r.stdout.match(
        /started \(pid (\d+), supervised by pid (\d+)\)/,
      )!.map(Number);
      s.track(child);
      s.track(supervisor);
      await assertGrowingCount(s);
      const status = await cli(BEHAVE, ["status", ...s.paths]);
      assert.match(
        status.stdout,
        new RegExp(
          `is running \\(pid ${child}, .*supervised by pid ${supervisor}, 0 restarts; .*log records dropped\\)`,
        ),
      );
      const reload = await cli(BEHAVE, ["reload", ...s.paths]);
      assert.equal(reload.code, 0, reload.stdout + reload.stderr);
      assert.match(reload.stdout, new RegExp(`reloaded \\(pid ${child}\\)`));
      await assertCleanStop(s);
      // The supervisor's few records wait in its backlog: its clean, timely
      // stop above is the proof that it never waited for syslog.
      assert.match(
        s.log(),
        /behave: syslog at .*deaf\.sock is not taking records/,
      );
    } finally {
      deaf.close();
    }
  });
});

Deno.test({
  ...asRoot(
    "with the log file on a full disk, console.log neither throws into the payload nor stops it; status counts, stop is clean",
  ),
  fn: () =>
    withScratch(async (s) => {
      const disk = `${s.dir}/disk`;
      Deno.mkdirSync(disk);
      const mount = await sh(`mount -t tmpfs -o size=256k tmpfs ${shq(disk)}`);
      assert.equal(mount.code, 0, mount.stderr);
      try {
        const logFile = `${disk}/d.log`;
        const r = await cli(BEHAVE, [
          "start",
          "--pidfile",
          s.pidfile,
          "--log-file",
          logFile,
          "--behavior",
          "console-flood",
          "--stop-timeout",
          String(STOP_TIMEOUT),
        ]);
        assert.equal(r.code, 0, r.stdout + r.stderr);
        const pid = s.track()!;
        await assertGrowingCount(s);
        const reload = await cli(BEHAVE, ["reload", "--pidfile", s.pidfile]);
        assert.equal(reload.code, 0, reload.stdout + reload.stderr);
        // Room again: the first line that fits says how many did not.
        Deno.truncateSync(logFile, 0);
        await waitFor(
          "the notice that the log file takes records again",
          () =>
            /The log file takes records again: \d+ log records dropped \(No space left on device\)/
              .test(Deno.readTextFileSync(logFile)),
        );
        assert.ok(alive(pid));
        await assertCleanStop(s);
      } finally {
        // Lazily: a failed test may leave the daemon holding the file until cleanup kills it.
        await sh(`umount -l ${shq(disk)}`);
      }
    }),
});

/** A libc whose syslog socket takes datagrams while `open` is true and otherwise fails with `errno`. */
function fakeSyslog(): {
  libc: Libc;
  sent: string[];
  state: { open: boolean; code: "EAGAIN" | "ENOENT" };
} {
  const sent: string[] = [];
  const state = { open: true, code: "EAGAIN" as "EAGAIN" | "ENOENT" };
  const fake = {
    getpid: () => 42,
    sendDatagram(address: string, data: Uint8Array) {
      if (!state.open) {
        throw state.code === "EAGAIN"
          ? new SysError(
            "sendto",
            address,
            11,
            "EAGAIN",
            "Resource temporarily unavailable",
          )
          : new SysError(
            "sendto",
            address,
            2,
            "ENOENT",
            "No such file or directory",
          );
      }
      sent.push(new TextDecoder().decode(data));
    },
  };
  return { libc: fake as unknown as Libc, sent, state };
}

const record = (text: string): SyslogRecord => ({
  level: "info",
  message: [text],
  timestamp: Date.now(),
});

Deno.test({
  name:
    "`syslogSink()` holds a burst in its backlog, drops what overflows it, says so once per episode, and how many once it drained",
  // The backlog's retry timer may still be due when the test ends; it is unref'd.
  sanitizeOps: false,
  fn: () => {
    const { libc, sent, state } = fakeSyslog();
    const dropped = new DroppedRecords();
    const notices: string[] = [];
    const fallback: string[] = [];
    const options = {
      socket: "/dev/log",
      ident: "t",
      facility: 3,
      dropped,
      fallback: (r: SyslogRecord) => fallback.push(String(r.message[0])),
      notice: (text: string) => notices.push(text),
    };
    const sink = syslogSink(libc, options);
    const big = "x".repeat(10_000);
    sink(record("one"));
    state.open = false;
    for (let i = 0; i < 100; i++) sink(record(`held ${i} ${big}`));
    // About 256 KiB wait; the rest is dropped, not poured into the file.
    const held = 100 - dropped.total;
    assert.ok(held > 20 && held < 30, `${held} held`);
    assert.deepEqual(fallback, []);
    assert.deepEqual(notices, [
      "syslog at /dev/log is not taking records (its queue stays full): dropping them; status shows the count",
    ]);
    state.open = true;
    sink(record("two"));
    const again = `syslog at /dev/log takes records again: ${
      100 - held
    } log records dropped (its queue stays full)`;
    assert.deepEqual(notices.slice(1), [again]);
    // The held records first, in order, then the notice, then the new one.
    assert.deepEqual(
      sent.map((l) => l.replace(/^.*\]: /, "").replace(` ${big}`, "")),
      [
        "one",
        ...Array.from({ length: held }, (_, i) => `held ${i}`),
        again,
        "two",
      ],
    );
    // A second episode is reported afresh.
    state.open = false;
    for (let i = 0; i < 100; i++) sink(record(big));
    assert.equal(notices.length, 3);

    // A missing socket loses nothing: the file takes the records.
    const gone = fakeSyslog();
    gone.state.open = false;
    gone.state.code = "ENOENT";
    const toFile = syslogSink(gone.libc, options);
    toFile(record("three"));
    toFile(record("four"));
    assert.deepEqual(fallback, ["three", "four"]);
    assert.match(notices[3], /^syslog is unavailable at \/dev\/log/);
    assert.equal(notices.length, 4);
  },
});

Deno.test("`DroppedRecords` counts per destination, one notice per episode, and publishes at most once per interval", async () => {
  const dropped = new DroppedRecords();
  assert.equal(dropped.delivered("log file"), null);
  const published: number[] = [];
  dropped.publishEvery(50, (n) => published.push(n));
  assert.equal(dropped.drop("log file", "No space left on device"), true);
  assert.equal(
    dropped.drop("syslog", "Resource temporarily unavailable"),
    true,
  );
  for (let i = 0; i < 998; i++) {
    assert.equal(dropped.drop("log file", "ignored"), false);
  }
  assert.equal(dropped.total, 1000);
  assert.deepEqual(dropped.delivered("log file"), {
    reason: "No space left on device",
    count: 999,
  });
  assert.equal(dropped.delivered("log file"), null);
  assert.ok(dropped.failing("syslog"));
  await waitFor("the publication", () => published.length > 0);
  assert.deepEqual(published, [1000]);
  assert.equal(dropped.drop("log file", "Input/output error"), true);
  await waitFor("the next publication", () => published.length > 1);
  assert.deepEqual(published, [1000, 1001]);
});

Deno.test("`guardConsole()` swallows and reports failed writes, and lets every other error through", () => {
  let fail: Error | null = null;
  const target = {
    log(..._args: unknown[]) {
      if (fail) throw fail;
    },
    createTask(name: string) {
      return { name };
    },
    indentLevel: 0,
  };
  const seen: string[] = [];
  guardConsole({
    failed: (err) => seen.push(`failed ${err.message}`),
    delivered: () => seen.push("delivered"),
  }, target as unknown as Console);
  target.log("a");
  fail = Object.assign(new Error("No space left on device (os error 28)"), {
    code: "ENOSPC",
  });
  target.log("b");
  assert.deepEqual(seen, [
    "delivered",
    "failed No space left on device (os error 28)",
  ]);
  fail = new Error("a custom inspect function failed");
  assert.throws(() => target.log("c"), /custom inspect/);
  assert.deepEqual(target.createTask("x"), { name: "x" });
  assert.equal(target.indentLevel, 0);
});
