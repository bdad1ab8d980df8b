/**
 * Trust boundaries, as root (CI runs as root): neither the daemon's own user
 * (its payload turned hostile after the privilege drop) nor another local
 * user can steer what root's commands open, chown or signal. Each attack
 * aims at a victim process the test starts; it must survive.
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
  nobodyHome,
  procFds,
  readPid,
  type Scratch,
  sh,
  shq,
  started,
  tool,
  victim,
  waitFor,
  withScratch,
} from "./helpers.ts";

/** Run a shell line as `nobody` (a second, unprivileged local user). */
function asNobody(line: string): Promise<{ code: number; stderr: string }> {
  return sh(
    `setpriv --reuid=nobody --regid=nogroup --clear-groups -- /bin/sh -c ${
      shq(line)
    }`,
  );
}

/** Start `nobody` holding an exclusive flock on `path` until killed. */
async function lockAsNobody(s: Scratch, path: string): Promise<void> {
  // sh opens the file, flock(1) locks that description, and sleep, exec'd
  // in place of sh, keeps it: one pid to kill.
  const child = new Deno.Command(tool("setpriv"), {
    args: [
      "--reuid=nobody",
      "--regid=nogroup",
      "--clear-groups",
      "--",
      "/bin/sh",
      "-c",
      `exec 9<${shq(path)} && flock -n 9 && echo locked && exec sleep 300`,
    ],
    stdout: "piped",
    stderr: "null",
  }).spawn();
  s.track(child.pid);
  const reader = child.stdout.getReader();
  const { value } = await reader.read();
  reader.releaseLock();
  void child.stdout.cancel();
  child.unref();
  void child.status;
  assert.equal(new TextDecoder().decode(value), "locked\n");
}

/** The daemon's commands against one pidfile. */
function control(entry: string, command: string, args: string[]) {
  return cli(entry, [command, ...args]);
}

Deno.test({
  ...asRoot(
    "a payload turned hostile after the drop cannot make root's status, reload or stop name or signal another process",
  ),
  fn: () =>
    withScratch(async (s) => {
      Deno.chmodSync(s.dir, 0o755);
      const target = victim(s);
      const pid = await started(s, BEHAVE, [
        "--behavior",
        "hostile",
        "--victim",
        String(target),
        "--user",
        "nobody",
      ]);
      await waitFor("the attack", () => s.log().includes("Hostile: "));
      const report = s.log().match(/Hostile: (.*)/)![1];
      assert.doesNotMatch(report, /WROTE/, report);
      assert.match(report, /path .*d\.pid refused/);
      assert.match(report, /path .*d\.launch refused/);
      // The kernel's view: the only descriptors on files beside the pidfile
      // (other than the log, the daemon's own, and the exit record, root's
      // but the daemon's to write through this descriptor alone, never read
      // as root's word) are read-only.
      const exitRecord = `${s.dir}/d.exit`;
      assert.equal(Deno.statSync(exitRecord).uid, 0, "root's, not nobody's");
      for (const [fd, path] of procFds(pid)) {
        if (!path.startsWith(`${s.dir}/`)) continue;
        if (path === s.logFile || path === exitRecord) continue;
        const flags = Deno.readTextFileSync(`/proc/${pid}/fdinfo/${fd}`)
          .match(/^flags:\s*([0-7]+)/m)![1];
        assert.equal(parseInt(flags, 8) & 3, 0, `fd ${fd} on ${path}`);
      }
      assert.equal(readPid(s.pidfile), pid);

      const st = await control(BEHAVE, "status", s.paths);
      assert.equal(st.code, 0, st.stdout + st.stderr);
      assert.match(st.stdout, new RegExp(`running \\(pid ${pid},`));
      const rl = await control(BEHAVE, "reload", s.paths);
      assert.equal(rl.code, 0, rl.stdout + rl.stderr);
      assert.match(rl.stdout, new RegExp(`reloaded \\(pid ${pid}\\)`));
      const stop = await control(BEHAVE, "stop", s.paths);
      assert.equal(stop.code, 0, stop.stdout + stop.stderr);
      assert.match(stop.stdout, new RegExp(`stopped \\(pid ${pid}\\)`));
      assert.ok(!alive(pid));
      assert.ok(alive(target), "the victim was not signalled");
    }),
});

Deno.test({
  ...asRoot(
    "a pidfile another user could change is refused by start, stop, reload and status (exit 2, status 4); the victim lives",
  ),
  fn: () =>
    withScratch(async (s) => {
      Deno.chmodSync(s.dir, 0o755);
      const target = victim(s);
      const cases: Array<[string, RegExp, () => void | Promise<void>]> = [
        [
          "sticky/evil.pid",
          /evil\.pid": it belongs to uid 65534/,
          async () => {
            // A /tmp-like directory: nobody plants a pidfile and locks it.
            Deno.mkdirSync(`${s.dir}/sticky`, { mode: 0o1777 });
            Deno.chmodSync(`${s.dir}/sticky`, 0o1777);
            const p = `${s.dir}/sticky/evil.pid`;
            const r = await asNobody(`echo ${target} > ${shq(p)}`);
            assert.equal(r.code, 0, r.stderr);
            await lockAsNobody(s, p);
          },
        ],
        [
          "group/x.pid",
          /directory ".*group" is writable by group 65534/,
          () => {
            Deno.mkdirSync(`${s.dir}/group`);
            Deno.chownSync(`${s.dir}/group`, 0, 65534);
            Deno.chmodSync(`${s.dir}/group`, 0o2775);
            Deno.writeTextFileSync(`${s.dir}/group/x.pid`, `${target}\n`);
          },
        ],
        [
          "theirs/x.pid",
          /directory ".*theirs" belongs to uid 65534/,
          () => {
            Deno.mkdirSync(`${s.dir}/theirs`);
            Deno.chownSync(`${s.dir}/theirs`, 65534, 65534);
            Deno.writeTextFileSync(`${s.dir}/theirs/x.pid`, `${target}\n`);
          },
        ],
      ];
      for (const [rel, why, setUp] of cases) {
        await setUp();
        const args = [
          "--pidfile",
          `${s.dir}/${rel}`,
          "--log-file",
          s.logFile,
          "--port",
          "0",
        ];
        for (const command of ["stop", "reload", "start"]) {
          const r = await control(EXAMPLE, command, args);
          assert.equal(r.code, 2, `${command} ${rel}: ${r.stdout}${r.stderr}`);
          assert.match(r.stderr, why);
          assert.equal(r.stderr.trim().split("\n").length, 1, r.stderr);
        }
        const st = await control(EXAMPLE, "status", args);
        assert.equal(st.code, 4, `status ${rel}: ${st.stdout}`);
        assert.match(st.stdout, why);
      }
      assert.ok(alive(target));
    }),
});

Deno.test({
  ...asRoot(
    "a trusted pidfile naming a process that does not hold its lock is not believed: stop exits 1, status 4, start does not say running",
  ),
  fn: () =>
    withScratch(async (s) => {
      Deno.chmodSync(s.dir, 0o755);
      const target = victim(s);
      // A stale root pidfile naming the victim, locked by another user
      // (any user who can read a file can flock it).
      Deno.writeTextFileSync(s.pidfile, `${target}\n`, { mode: 0o644 });
      await lockAsNobody(s, s.pidfile);
      const args = [...s.paths, "--port", "0", "--ready-timeout", "1"];
      const stop = await control(EXAMPLE, "stop", args);
      assert.equal(stop.code, 1, stop.stdout + stop.stderr);
      assert.match(
        stop.stderr,
        new RegExp(
          `Not trusting pidfile ".*d\\.pid": it names pid ${target}, which does not hold the pidfile's lock`,
        ),
      );
      const st = await control(EXAMPLE, "status", args);
      assert.equal(st.code, 4, st.stdout);
      const rl = await control(EXAMPLE, "reload", args);
      assert.equal(rl.code, 1, rl.stdout + rl.stderr);
      const start = await control(EXAMPLE, "start", args);
      assert.equal(start.code, 1, start.stdout + start.stderr);
      assert.doesNotMatch(start.stdout, /already running/);
      assert.ok(alive(target));

      // Locked with no pid at all: after --ready-timeout, a failure, not
      // "already running".
      Deno.writeTextFileSync(`${s.dir}/empty.pid`, "", { mode: 0o644 });
      await lockAsNobody(s, `${s.dir}/empty.pid`);
      const empty = await control(EXAMPLE, "start", [
        "--pidfile",
        `${s.dir}/empty.pid`,
        "--log-file",
        s.logFile,
        "--ready-timeout",
        "0.5",
      ]);
      assert.equal(empty.code, 1, empty.stdout + empty.stderr);
      assert.match(empty.stderr, /is locked, but no daemon became ready/);
    }),
});

Deno.test({
  ...asRoot(
    "FIFOs, sockets, devices, hard links and foreign files are refused at once with one line, nothing created, nothing left running",
  ),
  fn: () =>
    withScratch(async (s) => {
      Deno.chmodSync(s.dir, 0o755);
      const fifo = `${s.dir}/fifo`;
      assert.equal((await sh(`mkfifo ${shq(fifo)}`)).code, 0);
      const precious = `${s.dir}/precious`;
      Deno.writeTextFileSync(precious, "root only\n", { mode: 0o600 });
      Deno.linkSync(precious, `${s.dir}/linked`);
      const theirs = `${s.dir}/theirs`;
      Deno.writeTextFileSync(theirs, "");
      Deno.chownSync(theirs, 65534, 65534);
      const zero = `${s.dir}/zero`;
      assert.equal((await sh(`mknod ${shq(zero)} c 1 5`)).code, 0);
      const socket = `${s.dir}/sock`;
      const listener = Deno.listen({ transport: "unix", path: socket });
      try {
        const attempts: Array<[string[], RegExp]> = [
          [["--pidfile", fifo], /pidfile ".*fifo": it is a fifo/],
          [["--log-file", fifo], /log file ".*fifo": it is a FIFO or socket/],
          [["--pidfile", `${s.dir}/linked`], /it has 2 hard links/],
          [["--log-file", `${s.dir}/linked`], /it has 2 hard links/],
          [["--pidfile", theirs], /it belongs to uid 65534$/m],
          // The log file of a daemon started with --user is that user's.
          [
            ["--log-file", theirs],
            /it belongs to uid 65534; give --user when the daemon runs as that user$/m,
          ],
          [["--log-file", zero], /it is a char device/],
          [["--log-file", socket], /it is a FIFO or socket/],
        ];
        for (const [given, why] of attempts) {
          const args = [...s.paths, ...given, "--port", "0"];
          const r = await control(EXAMPLE, "start", args);
          assert.equal(r.code, 2, `${given}: ${r.stdout}${r.stderr}`);
          assert.match(r.stderr, why);
          assert.equal(r.stderr.trim().split("\n").length, 1, r.stderr);
          if (given[0] === "--pidfile") {
            const st = await control(EXAMPLE, "status", args);
            assert.equal(st.code, 4, `status ${given}: ${st.stdout}`);
            const stop = await control(EXAMPLE, "stop", args);
            assert.equal(stop.code, 2, `stop ${given}: ${stop.stderr}`);
          }
        }
      } finally {
        listener.close();
      }
      assert.throws(() => Deno.statSync(s.pidfile), "nothing created");
      const p = Deno.statSync(precious);
      assert.equal(p.uid, 0);
      assert.equal(p.mode! & 0o777, 0o600);
      assert.equal(Deno.readTextFileSync(precious), "root only\n");
      assert.equal(Deno.statSync(theirs).uid, 65534);
      assert.equal(
        (await sh(`pgrep -f ${shq(s.dir)}`)).stdout.trim(),
        "",
        "nothing left running",
      );
    }),
});

Deno.test({
  ...asRoot(
    "a /dev/null-like device log is used as it is and never handed to the daemon's user",
  ),
  fn: () =>
    withScratch(async (s) => {
      Deno.chmodSync(s.dir, 0o755);
      const dev = `${s.dir}/null`;
      assert.equal((await sh(`mknod -m 666 ${shq(dev)} c 1 3`)).code, 0);
      const pid = await started(s, BEHAVE, [
        "--log-file",
        dev,
        "--user",
        "nobody",
      ]);
      assert.equal(Deno.statSync(dev).uid, 0);
      assert.equal(procFds(pid).get(1), dev);
      assert.equal((await control(BEHAVE, "stop", s.paths)).code, 0);
    }),
});

Deno.test({
  ...asRoot(
    "pidfile and state reads are bounded: a 3 GiB pidfile is refused at once (status 4)",
  ),
  fn: () =>
    withScratch(async (s) => {
      const f = Deno.openSync(s.pidfile, { create: true, write: true });
      f.truncateSync(3 * 1024 ** 3); // sparse: no disk used
      f.close();
      Deno.chmodSync(s.pidfile, 0o644);
      const st = await control(EXAMPLE, "status", s.paths);
      assert.equal(st.code, 4, st.stdout + st.stderr);
      assert.match(st.stdout, /holds more than 4096 bytes/);
      const stop = await control(EXAMPLE, "stop", s.paths);
      assert.equal(stop.code, 2, stop.stdout + stop.stderr);
      assert.match(stop.stderr, /holds more than 4096 bytes/);
    }),
});

Deno.test({
  ...asRoot(
    "text the daemon publishes reaches root's terminal on one line without control characters",
  ),
  fn: () =>
    withScratch(async (s) => {
      await started(s, BEHAVE, ["--behavior", "reload-fails-escapes"]);
      const r = await control(BEHAVE, "reload", s.paths);
      assert.equal(r.code, 1);
      assert.match(r.stderr, /Reload failed: Bad .* config/);
      // deno-lint-ignore no-control-regex
      assert.doesNotMatch(r.stdout + r.stderr, /[\u0000-\u0009\u000b-\u001f]/);
      assert.equal((await control(BEHAVE, "stop", s.paths)).code, 0);
    }),
});

Deno.test({
  ...asRoot(
    "restart checks the new start before stopping the running daemon: a bad --chdir or log file leaves it running",
  ),
  fn: () =>
    withScratch(async (s) => {
      const pid = await started(s, BEHAVE, []);
      const fifo = `${s.dir}/fifo`;
      assert.equal((await sh(`mkfifo ${shq(fifo)}`)).code, 0);
      for (
        const bad of [
          ["--chdir", `${s.dir}/nowhere`],
          ["--log-file", fifo],
        ]
      ) {
        const r = await cli(BEHAVE, ["restart", ...s.paths, ...bad]);
        assert.notEqual(r.code, 0, r.stdout);
        assert.doesNotMatch(r.stdout, /stopped/);
        assert.ok(alive(pid), `still running after restart ${bad.join(" ")}`);
        assert.equal(readPid(s.pidfile), pid);
      }
      assert.equal((await control(BEHAVE, "stop", s.paths)).code, 0);
    }),
});

Deno.test({
  ...asRoot(
    "racing supervised starts all report the same daemon and supervisor",
  ),
  fn: () =>
    withScratch(async (s) => {
      const runs = await Promise.all(
        [0, 1, 2, 3].map(() =>
          cli(BEHAVE, ["start", ...s.paths, "--restart", "on-failure"])
        ),
      );
      for (const r of runs) assert.equal(r.code, 0, r.stdout + r.stderr);
      const said = runs.map((r) =>
        r.stdout.match(/\(pid (\d+), supervised by pid (\d+)\)/)?.slice(1, 3)
          .join("/")
      );
      for (const r of runs) {
        const m = r.stdout.match(/supervised by pid (\d+)/);
        if (m) s.track(Number(m[1]));
      }
      assert.equal(new Set(said).size, 1, said.join(", "));
      assert.ok(said[0] !== undefined, runs.map((r) => r.stdout).join(""));
      assert.equal((await control(BEHAVE, "stop", s.paths)).code, 0);
    }),
});

Deno.test({
  ...asRoot(
    "the log file is 0640 and default private directories 0700 whatever the caller's umask",
  ),
  fn: () =>
    withScratch(async (s) => {
      const r = await sh(
        `umask 077; ${denoLine(BEHAVE, ["start", ...s.paths])}`,
      );
      assert.equal(r.code, 0, r.stderr);
      s.track();
      assert.equal(Deno.statSync(s.logFile).mode! & 0o777, 0o640);
      assert.equal((await control(BEHAVE, "stop", s.paths)).code, 0);

      // A non-root caller's defaults live in a private directory it creates.
      const home = nobodyHome(s);
      const line = (command: string) =>
        `umask 000; ${asNobodyLine(home, denoLine(BEHAVE, [command]))}`;
      const start = await sh(line("start"));
      assert.equal(start.code, 0, start.stdout + start.stderr);
      s.track(readPid(`${home}/.local/state/behave/behave.pid`));
      for (const d of [".local", ".local/state", ".local/state/behave"]) {
        assert.equal(
          Deno.statSync(`${home}/${d}`).mode! & 0o777,
          0o700,
          d,
        );
      }
      assert.equal(
        Deno.statSync(`${home}/.local/state/behave/behave.log`).mode! & 0o777,
        0o640,
      );
      assert.equal((await sh(line("stop"))).code, 0);
    }),
});

Deno.test({
  ...asRoot(
    "start's clean-up after a ready timeout signals only through pidfds opened when its processes were seen, never by pid",
  ),
  fn: () =>
    withScratch(async (s) => {
      const trace = `${s.dir}/trace`;
      const r = await sh(
        `strace -f -tt -e trace=pidfd_open,pidfd_send_signal,kill,tgkill -o ${
          shq(trace)
        } ${
          denoLine(BEHAVE, [
            "start",
            ...s.paths,
            "--behavior",
            "never-ready",
            "--ready-timeout",
            "4",
          ])
        }`,
      );
      assert.equal(r.code, 1, r.stderr);
      assert.match(r.stderr, /not ready within 4 s and was stopped/);
      const lines = Deno.readTextFileSync(trace).split("\n");
      const at = (line: string) => {
        const [h, m, sec] = line.split(/\s+/)[1].split(":").map(Number);
        return h * 3600 + m * 60 + sec;
      };
      // The command's own thread makes these calls, the first one included.
      const caller = lines.find((l) => l.includes("pidfd_open("))!
        .split(/\s+/)[0];
      const opens = lines.filter((l) =>
        l.startsWith(`${caller} `) && /pidfd_open\(\d+, 0\) = \d+$/.test(l)
      );
      // The leader, right after spawning it; then what the leader spawned.
      assert.equal(opens.length, 2, opens.join("\n"));
      const opened = opens[1];
      const daemon = Number(opened.match(/pidfd_open\((\d+)/)![1]);
      const fd = opened.match(/= (\d+)$/)![1];
      const term = lines.find((l) =>
        l.includes(`pidfd_send_signal(${fd}, SIGTERM`)
      );
      assert.ok(term, `no SIGTERM through fd ${fd}`);
      // Pinned when the leader was done, well before the timeout.
      assert.ok(at(term) - at(opened) > 1.5, `${opened}\n${term}`);
      assert.ok(
        !lines.some((l) => /\b(kill|tgkill)\(/.test(l)),
        "nothing signalled by pid",
      );
      assert.ok(!alive(daemon));
    }),
});
