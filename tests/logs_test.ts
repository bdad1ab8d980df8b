/**
 * `logs`: the last lines of a log file, then new ones across the real
 * logrotate (create, copytruncate) while a daemon writes numbered lines; as
 * root on a file the daemon's user can swap; control characters on a
 * terminal; the syslog fallback; as the daemon's user.
 */
import assert from "node:assert/strict";
import {
  asNobodyLine,
  asRoot,
  BEHAVE,
  cli,
  denoLine,
  nobodyHome,
  rotateWhenGrown,
  type Scratch,
  sh,
  shq,
  started,
  waitFor,
  withScratch,
} from "./helpers.ts";
import {
  journalArgs,
  logSource,
  tailStart,
  TerminalText,
} from "../src/logs.ts";

const noLogrotate = (await sh("command -v logrotate")).stdout.trim() === "" &&
  !Deno.env.get("CI");

/** Numbered lines `line 0` … `line n-1`, each padded to `width` bytes. */
function numbered(n: number, width = 40): string {
  return Array.from(
    { length: n },
    (_, i) => `line ${i}`.padEnd(width - 1, ".") + "\n",
  ).join("");
}

/** Every `seq N` number in a log text, in order. */
function seqs(text: string): number[] {
  return [...text.matchAll(/ seq (\d+)$/gm)].map((m) => Number(m[1]));
}

/** `logs -f …` running in the background, its output collected. */
function follower(s: Scratch, args: string[]) {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", BEHAVE, "logs", ...args],
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  s.track(child.pid);
  const chunks: Uint8Array[] = [];
  const reading = (async () => {
    for await (const c of child.stdout) chunks.push(c);
  })();
  let stderr = "";
  const readingErr = (async () => {
    for await (const c of child.stderr.pipeThrough(new TextDecoderStream())) {
      stderr += c;
    }
  })();
  const bytes = () => concat(chunks);
  /** Its exit code and stderr, once it ended. */
  const ended = async () => {
    const { code } = await child.status;
    await Promise.all([reading, readingErr]);
    return { code, stderr };
  };
  return {
    pid: child.pid,
    text: () => new TextDecoder().decode(bytes()),
    stderr: () => stderr,
    ended,
    /** Send `signal`, then wait for its end. */
    stop: (signal: Deno.Signal = "SIGTERM") => {
      try {
        child.kill(signal);
      } catch {
        // ended already
      }
      return ended();
    },
  };
}

Deno.test("`logs -n` shows the last lines of a file larger than a read, by any spelling", async () => {
  await withScratch(async (s) => {
    const text = numbered(20_000); // 800 kB, many 64 KiB chunks
    Deno.writeTextFileSync(s.logFile, text);
    const lines = text.split("\n").slice(0, -1);
    const logs = (...a: string[]) =>
      cli(BEHAVE, ["logs", "--log-file", s.logFile, ...a]);
    const wanted = (n: number) =>
      n === 0 ? "" : lines.slice(-n).join("\n") + "\n";
    for (
      const [args, n] of [
        [[], 10],
        [["-n", "5000"], 5000],
        [["-n5"], 5],
        [["--lines=7"], 7],
        [["--lines", "0"], 0],
        [["-n", "30000"], 20_000],
      ] as const
    ) {
      const r = await logs(...args);
      assert.equal(r.code, 0, r.stderr);
      assert.equal(r.stdout, wanted(n), JSON.stringify(args));
      assert.equal(r.stderr, "");
    }
    // A last line without its newline is a line.
    Deno.writeTextFileSync(s.logFile, "a\nb\nc", { append: true });
    assert.equal((await logs("-n", "2")).stdout, "b\nc");
    for (const bad of [["-n", "x"], ["-n"], ["-n", "-1"], ["--lines=1.5"]]) {
      const r = await logs(...bad);
      assert.equal(r.code, 2, JSON.stringify(bad));
      assert.match(r.stderr, /^behave: .*\nUsage: /);
    }
  });
});

Deno.test("`logs -n` reads a huge file from its end only", async () => {
  await withScratch(async (s) => {
    // 1 TiB of holes, then three lines: read whole, it would never end.
    const f = Deno.openSync(s.logFile, { create: true, write: true });
    f.truncateSync(1024 ** 4);
    f.close();
    Deno.writeTextFileSync(s.logFile, "x\ny\nz\n", { append: true });
    const began = performance.now();
    const r = await cli(BEHAVE, ["logs", "--log-file", s.logFile, "-n", "2"], {
      timeout: 20,
    });
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, "y\nz\n");
    assert.ok(performance.now() - began < 15_000);
    // More lines than it holds near its end: the whole lines within the
    // bound (1 MiB a line asked for; "x" ends a line of 1 TiB), and a note.
    const more = await cli(BEHAVE, ["logs", "--log-file", s.logFile, "-n4"], {
      timeout: 20,
    });
    assert.equal(more.code, 0, more.stderr);
    assert.equal(more.stdout, "y\nz\n");
    assert.match(
      more.stderr,
      /^behave: Fewer than 4 line breaks in the last 0 MiB of ".*": showing those only\n$/,
    );
  });
});

Deno.test("tailStart() looks back no further than its bound, and starts on a whole line", () => {
  const bytes = new TextEncoder().encode(numbered(1000, 10)); // 10 000 bytes
  const read = (o: number, max: number) => bytes.slice(o, o + max);
  assert.deepEqual(tailStart(read, bytes.length, 3), {
    offset: 9970,
    bounded: false,
  });
  assert.deepEqual(tailStart(read, bytes.length, 0).offset, 10_000);
  // 500 lines wanted, 95 bytes allowed: the last 9 whole lines.
  assert.deepEqual(tailStart(read, bytes.length, 500, 95), {
    offset: 9910,
    bounded: true,
  });
  // No line break within the bound: the end of a line too long.
  assert.deepEqual(tailStart(read, bytes.length, 2, 5), {
    offset: 9995,
    bounded: true,
  });
});

/**
 * Run the chatty fixture under `logs -f` through three rotations, each once
 * the follower has shown a line of the file it rotates.
 *
 * @returns The numbers `logs` showed, and those in the files, by file
 * (oldest first) and all together.
 */
async function followRotations(
  s: Scratch,
  directives: string,
): Promise<{ shown: number[]; files: number[][]; kept: number[] }> {
  await started(s, BEHAVE, ["--behavior", "chatty"]);
  const conf = `${s.dir}/logrotate.conf`;
  Deno.writeTextFileSync(conf, `${s.logFile} {\n${directives}}\n`);
  const f = follower(s, ["--log-file", s.logFile, "-f", "-n", "1000000000"]);
  let files: number[][] = [];
  try {
    // Rotating before it opened the file would test nothing.
    await waitFor(
      "logs -f showing the first line",
      () => seqs(f.text())[0] === 0,
    );
    for (let round = 0; round < 3; round++) {
      // However far a loaded machine lets it lag, it has been in each file.
      let first: number | undefined;
      await waitFor("a line in the current file", () => {
        first = seqs(Deno.readTextFileSync(s.logFile))[0];
        return first !== undefined;
      });
      await waitFor(
        "logs -f into the current file",
        () => (seqs(f.text()).at(-1) ?? -1) >= first!,
      );
      await rotateWhenGrown(s, conf);
    }
    await waitFor(
      "lines after the last rotation",
      () => Deno.statSync(s.logFile).size > 10_000,
    );
    assert.equal((await cli(BEHAVE, ["stop", ...s.paths])).code, 0);
    files = [3, 2, 1].map((n) => `${s.logFile}.${n}`).concat(s.logFile)
      .map((p) => seqs(Deno.readTextFileSync(p)));
    const last = files.flat().at(-1);
    await waitFor(
      "logs -f showing the last line",
      () => seqs(f.text()).at(-1) === last,
      20_000,
    );
  } finally {
    const { code, stderr } = await f.stop();
    assert.equal(code, 0, stderr);
  }
  return { shown: seqs(f.text()), files, kept: files.flat() };
}

Deno.test({
  name:
    "`logs -f` follows the log across logrotate create + reload: every line once, in order",
  ignore: noLogrotate,
  fn: () =>
    withScratch(async (s) => {
      const { shown, kept } = await followRotations(
        s,
        `  rotate 20\n  create 0640 root root\n  nocompress\n  postrotate\n    ${
          denoLine(BEHAVE, ["reload", "--pidfile", s.pidfile])
        }\n  endscript\n`,
      );
      assert.ok(shown.length > 2000, `only ${shown.length} lines`);
      shown.forEach((n, i) =>
        assert.equal(n, i, `line ${i} is seq ${n}: lost or duplicated`)
      );
      assert.deepEqual(shown, kept);
    }),
});

Deno.test({
  name:
    "`logs -f` follows the log across logrotate copytruncate: no line twice, in order, gaps only where copytruncate loses lines",
  ignore: noLogrotate,
  fn: () =>
    withScratch(async (s) => {
      const { shown, files, kept } = await followRotations(
        s,
        "  rotate 20\n  copytruncate\n  nocompress\n",
      );
      // Lines of every file were shown. How many is up to the load: what
      // was written between logs' last look and a truncation is lost to it.
      const seen = new Set(shown);
      files.forEach((file, i) =>
        assert.ok(file.some((n) => seen.has(n)), `nothing shown of file ${i}`)
      );
      assert.equal(shown[0], 0);
      assert.equal(shown.at(-1), kept.at(-1));
      for (let i = 1; i < shown.length; i++) {
        assert.ok(
          shown[i] > shown[i - 1],
          `seq ${shown[i]} after ${shown[i - 1]}: duplicated or out of order`,
        );
      }
      // What was written between logs' last look and the truncation is in
      // the copy only; what copytruncate itself loses is nowhere. Either
      // way, only at the three rotation points.
      const gaps = shown.slice(1).filter((n, i) => n !== shown[i] + 1).length;
      assert.ok(gaps <= 3, `${gaps} gaps for 3 rotations`);
    }),
});

Deno.test("`logs -f` waits for a file that does not exist yet, ends quietly on SIGINT and SIGTERM, and when its reader is gone; idle, it costs next to no CPU", async () => {
  await withScratch(async (s) => {
    const f = follower(s, ["--log-file", s.logFile, "-f"]);
    await waitFor("the waiting note", () => f.stderr().includes("waiting"));
    Deno.writeTextFileSync(s.logFile, "first\n");
    await waitFor("the new file's line", () => f.text() === "first\n");
    // Idle: CPU time over 2 s, in clock ticks (100 a second).
    const ticks = () => {
      const stat = Deno.readTextFileSync(`/proc/${f.pid}/stat`);
      const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      return Number(fields[11]) + Number(fields[12]);
    };
    const before = ticks();
    await new Promise((r) => setTimeout(r, 2000));
    const used = ticks() - before;
    assert.ok(used <= 10, `${used} ticks of CPU in 2 s of idle following`);
    Deno.writeTextFileSync(s.logFile, "second\n", { append: true });
    await waitFor("the appended line", () => f.text() === "first\nsecond\n");
    const { code, stderr } = await f.stop("SIGINT");
    assert.equal(code, 0);
    assert.match(stderr, /^behave: No log file ".*" yet: waiting for it\n$/);

    const g = follower(s, ["--log-file", s.logFile, "-fn", "1"]);
    await waitFor("the last line", () => g.text() === "second\n");
    assert.deepEqual(await g.stop("SIGTERM"), { code: 0, stderr: "" });

    // The reader goes away while nothing new is written.
    const r = await sh(
      `set -o pipefail; ${
        denoLine(BEHAVE, ["logs", "-f", "--log-file", s.logFile])
      } | head -1`,
      { timeout: 20 },
    );
    assert.deepEqual([r.code, r.stdout, r.stderr], [0, "first\n", ""]);
  });
});

Deno.test("`logs -f` notices a file truncated and written past where it had read, between two looks", async () => {
  await withScratch(async (s) => {
    const before = numbered(25);
    Deno.writeTextFileSync(s.logFile, before);
    const f = follower(s, ["--log-file", s.logFile, "-f", "-n", "100"]);
    try {
      await waitFor("the first lines", () => f.text() === before);
      // One open with O_TRUNC and one write: no look in between sees it shrink.
      const after = numbered(100).replaceAll("line", "next");
      Deno.writeTextFileSync(s.logFile, after);
      await waitFor(
        "the rewritten file, whole",
        () => f.text() === before + after,
      );
    } finally {
      const { code, stderr } = await f.stop();
      assert.equal(code, 0);
      assert.match(stderr, /^behave: ".*" was truncated\n$/);
    }
  });
});

Deno.test("`logs -f` notices a file rewritten past its offset between its look and its read, and shows the new file whole", async () => {
  await withScratch(async (s) => {
    const { libc } = await import("../ffi/mod.ts");
    const { showLogs } = await import("../src/logs.ts");
    const before = numbered(25);
    const after = numbered(100).replaceAll("line", "next");
    Deno.writeTextFileSync(s.logFile, before);
    // The rewrite lands exactly between the look for a truncation and the
    // read at the old offset: the first read there after the first lines.
    const real = libc();
    let armed = true;
    const racing = new Proxy(real, {
      get(target, name) {
        if (name !== "readAt") return Reflect.get(target, name);
        return (fd: number, offset: number, n: number) => {
          if (armed && offset === before.length) {
            armed = false;
            Deno.writeTextFileSync(s.logFile, after);
          }
          return target.readAt(fd, offset, n);
        };
      },
    });
    const shown: Uint8Array[] = [];
    const notes: string[] = [];
    const stop = new AbortController();
    const text = () => new TextDecoder().decode(concat(shown));
    const following = showLogs(racing, { kind: "file", path: s.logFile }, {
      lines: 100,
      follow: true,
      owners: [Deno.uid()!],
      note: (t) => notes.push(t),
      signal: stop.signal,
      pollMs: 5,
      out: {
        write: (bytes) => {
          shown.push(bytes.slice());
          return Promise.resolve(true);
        },
        end: () => Promise.resolve(),
        gone: () => false,
      },
    });
    try {
      await waitFor("the new file, whole", () => text() === before + after);
    } finally {
      stop.abort();
      assert.equal(await following, 0);
    }
    assert.equal(armed, false, "the rewrite happened");
    assert.deepEqual(notes, [`${JSON.stringify(s.logFile)} was truncated`]);
  });
});

/** The bytes of `chunks`, in one array. */
function concat(chunks: Uint8Array[]): Uint8Array {
  const all = new Uint8Array(chunks.reduce((n, c) => n + c.length, 0));
  let at = 0;
  for (const c of chunks) {
    all.set(c, at);
    at += c.length;
  }
  return all;
}

Deno.test("`logs` escapes control characters for a terminal and passes bytes through otherwise", async () => {
  await withScratch(async (s) => {
    const bytes = new Uint8Array([
      ...new TextEncoder().encode("plain\tline é\n\u001b]0;owned\u0007"),
      ...new TextEncoder().encode("\u001b[2J\rred\u009b\n"),
      0xff,
      0xc3,
      0x0a,
    ]);
    Deno.writeFileSync(s.logFile, bytes);
    const piped = await new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", BEHAVE, "logs", "--log-file", s.logFile],
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).output();
    assert.equal(piped.code, 0);
    assert.deepEqual(piped.stdout, bytes);

    const tty = await sh(
      `script -qec ${
        shq(denoLine(BEHAVE, ["logs", "--log-file", s.logFile]))
      } /dev/null`,
    );
    assert.equal(tty.code, 0, tty.stderr);
    const shown = tty.stdout.replaceAll("\r\n", "\n");
    assert.equal(
      shown,
      "plain\tline é\n\\u001b]0;owned\\u0007\\u001b[2J\\u000dred\\u009b\n\\xff\\xc3\n",
    );
  });
});

Deno.test("TerminalText keeps a character cut between two reads whole", () => {
  const t = new TerminalText();
  const e = new TextEncoder().encode("é€😀");
  let out = "";
  for (const b of e) out += t.render(new Uint8Array([b]));
  assert.equal(out + t.render(new Uint8Array(0), true), "é€😀");
  assert.equal(
    t.render(new Uint8Array([0xe2, 0x82]), false) +
      t.render(new Uint8Array(0), true),
    "\\xe2\\x82",
  );
  // Overlong forms and surrogates are not characters.
  assert.equal(
    t.render(new Uint8Array([0xc0, 0xaf, 0xed, 0xa0, 0x80]), true),
    "\\xc0\\xaf\\xed\\xa0\\x80",
  );
});

Deno.test("logSource() reads the journal where journald runs, else the file with a note; /dev/null and stderr have nothing", async () => {
  const core = {
    logTo: "syslog" as const,
    logFile: "/var/log/myd.log",
    syslog: "daemon",
    syslogSocket: "/dev/log",
  };
  assert.deepEqual(logSource(core, "myd", () => true), {
    kind: "journal",
    identifier: "myd",
  });
  const file = logSource(core, "myd", () => false);
  assert.equal(file.kind, "file");
  assert.match(
    (file as { note: string }).note,
    /records go to syslog .* not journald: showing "\/var\/log\/myd.log", which holds its stdout and stderr/,
  );
  assert.deepEqual(
    logSource({ ...core, logTo: "file" }, "myd", () => true),
    { kind: "file", path: "/var/log/myd.log" },
  );
  assert.equal(
    logSource({ ...core, logTo: "file", logFile: "/dev/null" }, "myd").kind,
    "none",
  );
  assert.equal(logSource({ ...core, logTo: "stderr" }, "myd").kind, "none");
  assert.deepEqual(
    journalArgs("myd", { lines: 3, follow: false, owners: [0, 0, 998] }),
    [
      "--no-pager",
      "--quiet",
      "--lines=3",
      "--identifier=myd",
      "_UID=0",
      "_UID=998",
    ],
  );

  const r = await cli(BEHAVE, ["logs", "--log-file", "/dev/null"]);
  assert.deepEqual([r.code, r.stderr], [
    1,
    "behave: The daemon logs to /dev/null: nothing kept\n",
  ]);
});

Deno.test({
  name:
    "`logs` under syslog without journald shows the file holding stdout and stderr, with a note",
  ignore: (() => {
    try {
      Deno.lstatSync("/run/systemd/journal/socket");
      return true;
    } catch {
      return false;
    }
  })(),
  fn: () =>
    withScratch(async (s) => {
      Deno.writeTextFileSync(s.logFile, "console.log output\n");
      const r = await cli(BEHAVE, [
        "logs",
        "--syslog",
        "--log-file",
        s.logFile,
      ]);
      assert.equal(r.code, 0, r.stderr);
      assert.equal(r.stdout, "console.log output\n");
      assert.match(
        r.stderr,
        /^behave: The daemon's records go to syslog \(daemon at "\/dev\/log"\), not journald: showing ".*d\.log", which holds its stdout and stderr, not those records\n$/,
      );
    }),
});

/** A daemon run as nobody, its log in a directory nobody owns (so nobody can swap it). */
async function nobodysDaemon(
  s: Scratch,
): Promise<{ home: string; log: string }> {
  const home = nobodyHome(s);
  const dir = `${s.dir}/var`;
  Deno.mkdirSync(dir);
  Deno.chownSync(dir, 65534, 65534);
  const log = `${dir}/d.log`;
  const r = await cli(BEHAVE, [
    "start",
    "--pidfile",
    s.pidfile,
    "--log-file",
    log,
    "--user",
    "nobody",
  ]);
  assert.equal(r.code, 0, r.stdout + r.stderr);
  s.track();
  await waitFor("the daemon's first line", () => {
    try {
      return Deno.readTextFileSync(log).includes("Behavior normal");
    } catch {
      return false;
    }
  });
  return { home, log };
}

Deno.test({
  ...asRoot(
    "`logs` as root refuses a log file the daemon's user swapped for a symlink, a hard link or a FIFO, also while following",
  ),
  fn: () =>
    withScratch(async (s) => {
      const { home, log } = await nobodysDaemon(s);
      const asNobody = (line: string) =>
        sh(asNobodyLine(home, `/bin/sh -c ${shq(line)}`));
      const logs = (...a: string[]) =>
        cli(BEHAVE, ["logs", "--log-file", log, "--user", "nobody", ...a], {
          timeout: 20,
        });
      assert.equal((await logs()).code, 0);
      const f = follower(s, ["--log-file", log, "--user", "nobody", "-f"]);
      await waitFor("the first lines", () => f.text().includes("Behavior"));
      // At "rotation", a link to a root-only file in its place.
      const swap = await asNobody(
        `mv ${shq(log)} ${shq(`${log}.1`)} && ln -s /etc/shadow ${shq(log)}`,
      );
      assert.equal(swap.code, 0, swap.stderr);
      const { code, stderr } = await f.ended();
      assert.equal(code, 2);
      assert.equal(
        stderr,
        `behave: Refusing log file ${
          JSON.stringify(log)
        }: it is a symbolic link\n`,
      );
      assert.ok(!f.text().includes("root:"));
      for (
        const [line, why] of [
          [
            `rm ${shq(log)} && ln ${shq(`${log}.1`)} ${shq(log)}`,
            "2 hard links",
          ],
          [`rm ${shq(log)} && mkfifo ${shq(log)}`, "it is a fifo"],
        ]
      ) {
        assert.equal((await asNobody(line)).code, 0);
        const r = await logs();
        assert.equal(r.code, 2);
        assert.ok(r.stderr.includes(why), r.stderr);
        assert.equal(r.stderr.split("\n").length, 2, r.stderr);
        assert.equal(r.stdout, "");
      }
    }),
});

Deno.test({
  ...asRoot(
    "`logs` works as the daemon's user on the log it can read; as root it trusts that user only when told with --user",
  ),
  fn: () =>
    withScratch(async (s) => {
      const { home, log } = await nobodysDaemon(s);
      const mine = await sh(
        asNobodyLine(home, denoLine(BEHAVE, ["logs", "--log-file", log])),
      );
      assert.equal(mine.code, 0, mine.stderr);
      assert.match(mine.stdout, /Behavior normal/);
      const untold = await cli(BEHAVE, ["logs", "--log-file", log]);
      assert.equal(untold.code, 2);
      assert.equal(
        untold.stderr,
        `behave: Refusing log file ${
          JSON.stringify(log)
        }: it belongs to uid 65534; give --user when the daemon runs as that user\n`,
      );
      const told = await cli(BEHAVE, [
        "logs",
        "--log-file",
        log,
        "--user",
        "nobody",
      ]);
      assert.equal(told.code, 0, told.stderr);
      assert.equal(told.stdout, mine.stdout);
      assert.equal(
        (await cli(BEHAVE, ["stop", "--pidfile", s.pidfile])).code,
        0,
      );
    }),
});

Deno.test("`logs` under journald runs journalctl with the daemon's identifier and the trusted uids, and stops it when interrupted", async () => {
  await withScratch(async (s) => {
    const { libc } = await import("../ffi/mod.ts");
    const { showLogs } = await import("../src/logs.ts");
    const args = `${s.dir}/args`;
    Deno.writeTextFileSync(
      `${s.dir}/journalctl`,
      `#!/bin/sh\necho "$@" > ${
        shq(args)
      }\n[ "$1" = --no-pager ] && exec sleep 60\n`,
    );
    Deno.chmodSync(`${s.dir}/journalctl`, 0o755);
    const path = Deno.env.get("PATH");
    Deno.env.set("PATH", `${s.dir}:${path}`);
    try {
      const stop = new AbortController();
      const shown = showLogs(libc(), { kind: "journal", identifier: "myd" }, {
        lines: 7,
        follow: true,
        owners: [0, 998],
        note: () => {},
        signal: stop.signal,
      });
      await waitFor("journalctl to run", () => {
        try {
          return Deno.readTextFileSync(args) !== "";
        } catch {
          return false;
        }
      });
      assert.equal(
        Deno.readTextFileSync(args),
        "--no-pager --quiet --lines=7 --follow --identifier=myd _UID=0 _UID=998\n",
      );
      stop.abort();
      assert.equal(await shown, 0);
    } finally {
      Deno.env.set("PATH", path ?? "");
    }
  });
});

Deno.test("`logs -f` stuck writing to a reader that stopped reading ends at SIGTERM, exit 0", async () => {
  await withScratch(async (s) => {
    Deno.writeTextFileSync(s.logFile, numbered(50_000)); // 2 MB: more than a pipe holds
    const child = new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "-A",
        BEHAVE,
        "logs",
        "-fn",
        "50000",
        "--log-file",
        s.logFile,
      ],
      stdin: "null",
      stdout: "piped",
      stderr: "null",
    }).spawn();
    s.track(child.pid);
    try {
      await waitFor("a pipe's worth written", () => {
        const io = Deno.readTextFileSync(`/proc/${child.pid}/io`);
        return Number(io.match(/^wchar: (\d+)$/m)![1]) > 60_000;
      });
      child.kill("SIGTERM");
      const timer = setTimeout(() => child.kill("SIGKILL"), 15_000);
      const { code } = await child.status;
      clearTimeout(timer);
      assert.equal(code, 0);
    } finally {
      await child.stdout.cancel();
    }
  });
});
