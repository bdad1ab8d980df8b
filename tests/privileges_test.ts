/**
 * Privileges and hardening, as root (CI runs as root): dropping to a user
 * after a privileged prepare, proof that nothing can be regained, the
 * hardening defaults and their switches, and every refusal with its code.
 */
import assert from "node:assert/strict";
import {
  alive,
  asRoot,
  BEHAVE,
  cli,
  EXAMPLE,
  listeningPort,
  procEnviron,
  procStatus,
  type Scratch,
  sh,
  shq,
  started,
  withScratch,
} from "./helpers.ts";

/** A scratch directory the unprivileged daemon can traverse (to reopen its log). */
function traversable(s: Scratch): void {
  Deno.chmodSync(s.dir, 0o755);
}

/** `id -u/-g/-G nobody`, from the system databases. */
async function nobody(): Promise<
  { uid: string; gid: string; groups: string[] }
> {
  const [u, g, gs] = await Promise.all(
    ["-u", "-g", "-G"].map((f) => sh(`id ${f} nobody`)),
  );
  return {
    uid: u.stdout.trim(),
    gid: g.stdout.trim(),
    groups: gs.stdout.trim().split(/\s+/).sort(),
  };
}

Deno.test({
  ...asRoot(
    "start --user nobody: prepare runs as root, then every thread has nobody's ids and groups only",
  ),
  fn: () =>
    withScratch(async (s) => {
      traversable(s);
      const secret = `${s.dir}/secret.key`;
      Deno.writeTextFileSync(secret, "hunter2\n", { mode: 0o600 });
      const pid = await started(s, BEHAVE, [
        "--behavior",
        "privileged-prepare",
        "--secret",
        secret,
        "--user",
        "nobody",
      ]);
      const who = await nobody();
      for (const t of Deno.readDirSync(`/proc/${pid}/task`)) {
        const status = Deno.readTextFileSync(
          `/proc/${pid}/task/${t.name}/status`,
        );
        const field = (f: string) =>
          status.match(new RegExp(`^${f}:\\s*(.*)$`, "m"))![1].trim();
        assert.deepEqual(field("Uid").split(/\s+/), [
          who.uid,
          who.uid,
          who.uid,
          who.uid,
        ], `thread ${t.name}`);
        assert.deepEqual(field("Gid").split(/\s+/), [
          who.gid,
          who.gid,
          who.gid,
          who.gid,
        ], `thread ${t.name}`);
        assert.deepEqual(
          field("Groups").split(/\s+/).filter(Boolean).sort(),
          who.groups,
          `thread ${t.name}`,
        );
      }
      const log = s.log();
      assert.match(log, /Secret from prepare: hunter2/);
      assert.match(
        log,
        /Regain setuid\(0\): refused \(setuid "0": Operation not permitted\)/,
      );
      assert.match(log, /Regain setgid\(0\): refused/);
      assert.match(log, /Regain read secret: refused/);
      assert.doesNotMatch(log, /succeeded/);
      assert.doesNotMatch(log, /Running as root/);
    }),
});

Deno.test({
  ...asRoot(
    "a daemon running as nobody serves, reloads, and is stopped by root, which removes its pidfile",
  ),
  fn: () =>
    withScratch(async (s) => {
      traversable(s);
      const pid = await started(s, EXAMPLE, [
        "--port",
        "0",
        "--user",
        "nobody",
        "--group",
        "nogroup",
      ]);
      assert.equal(procStatus(pid, "NoNewPrivs"), "1");
      assert.match(
        Deno.readTextFileSync(`/proc/${pid}/limits`),
        /Max core file size\s+0\s+0\s/,
      );
      const res = await fetch(
        `http://127.0.0.1:${listeningPort(s.log())}/health`,
      );
      assert.equal((await res.json()).pid, pid);
      assert.equal(
        Deno.statSync(s.logFile).uid,
        Number((await nobody()).uid),
        "log file handed to the user",
      );

      assert.equal((await cli(EXAMPLE, ["status", ...s.paths])).code, 0);
      // As logrotate's `create 0640 nobody nogroup` does: the unprivileged
      // daemon cannot create files in a root-owned directory itself.
      Deno.renameSync(s.logFile, `${s.logFile}.1`);
      Deno.writeTextFileSync(s.logFile, "", { mode: 0o640 });
      Deno.chownSync(
        s.logFile,
        Number((await nobody()).uid),
        Number((await nobody()).gid),
      );
      const reload = await cli(EXAMPLE, ["reload", ...s.paths]);
      assert.equal(reload.code, 0, reload.stderr);
      const stop = await cli(EXAMPLE, ["stop", ...s.paths]);
      assert.equal(stop.code, 0, stop.stderr);
      assert.ok(!alive(pid));
      assert.match(s.log(), /left for stop to remove/);
      // Left: the logs, and how the run ended, in the daemon's words.
      assert.deepEqual([...Deno.readDirSync(s.dir)].map((e) => e.name).sort(), [
        "d.exit",
        "d.log",
        "d.log.1",
      ]);
      assert.match(
        (await cli(EXAMPLE, ["status", ...s.paths])).stdout,
        /is not running \(stopped \(SIGTERM\) \d+s ago\)/,
      );
    }),
});

Deno.test({
  ...asRoot(
    "as root without --user the daemon warns in its log; hardening can be switched off one by one",
  ),
  fn: () =>
    withScratch(async (s) => {
      const pid = await started(s, EXAMPLE, [
        "--port",
        "0",
        "--allow-new-privs",
        "--allow-core-dumps",
      ]);
      assert.match(s.log(), /\[WRN\] .*Running as root: pass --user/);
      assert.equal(procStatus(pid, "NoNewPrivs"), "0");
      assert.doesNotMatch(
        Deno.readTextFileSync(`/proc/${pid}/limits`),
        /Max core file size\s+0\s+0\s/,
      );
    }),
});

Deno.test("--clear-env passes on only the allow-list and the daemon's declared variables", async () => {
  await withScratch(async (s) => {
    const line = `SECRET_TOKEN=abc BEHAVE_KEEP=yes TZ=UTC LC_TIME=C ${
      [Deno.execPath(), "run", "-A", BEHAVE, "start", ...s.paths, "--clear-env"]
        .map(shq).join(" ")
    }`;
    const r = await sh(line);
    assert.equal(r.code, 0, r.stderr);
    const pid = s.track()!;
    const names = procEnviron(pid).map((e) => e.split("=")[0]).sort();
    assert.ok(!names.includes("SECRET_TOKEN"), names.join(" "));
    assert.ok(!names.includes("HOME"));
    for (const kept of ["BEHAVE_KEEP", "LC_TIME", "PATH", "TZ"]) {
      assert.ok(names.includes(kept), kept);
    }
  });
});

Deno.test("start refuses a pidfile in a directory others can write without the sticky bit", async () => {
  await withScratch(async (s) => {
    const open = `${s.dir}/open`;
    Deno.mkdirSync(open);
    Deno.chmodSync(open, 0o777);
    const args = [
      "--pidfile",
      `${open}/d.pid`,
      "--log-file",
      s.logFile,
      "--port",
      "0",
    ];
    const r = await cli(EXAMPLE, ["start", ...args]);
    assert.equal(r.code, 2);
    assert.match(
      r.stderr,
      /Refusing pidfile ".*open\/d\.pid": directory ".*open" is writable by every user/,
    );
    assert.deepEqual([...Deno.readDirSync(open)], []);
    const status = await cli(EXAMPLE, ["status", ...args]);
    assert.equal(status.code, 4, "status will not trust it either");

    Deno.chmodSync(open, 0o1777); // sticky, like /tmp: allowed
    const ok = await cli(EXAMPLE, ["start", ...args]);
    s.track(Number(ok.stdout.match(/pid (\d+)/)?.[1]));
    assert.equal(ok.code, 0, ok.stderr);
    assert.equal((await cli(EXAMPLE, ["stop", ...args])).code, 0);
  });
});

Deno.test("unknown or malformed users and groups exit 2; --user, or paths a non-root caller may not write, exit 4", async () => {
  await withScratch(async (s) => {
    for (
      const [args, message] of [
        [["--user", "no-such-user-x"], /Unknown user "no-such-user-x"/],
        [
          ["--user", "nobody", "--group", "no-such-group-x"],
          /Unknown group "no-such-group-x"/,
        ],
        [["--user", "a b"], /Invalid --user: "a b"/],
        [["--user", "99999999999"], /Invalid --user/],
        [["--group=-1"], /Invalid --group: "-1"/],
        [
          ["--group", "-1"],
          /Option "--group" has a value starting with "-": write it as --group=VALUE/,
        ],
      ] as const
    ) {
      const r = await cli(EXAMPLE, ["start", ...s.paths, ...args]);
      assert.equal(r.code, 2, `${args}: ${r.stderr}`);
      assert.match(r.stderr, message);
    }
    if (Deno.uid() !== 0) {
      console.log("Skipped the non-root caller's part: it needs root");
      return;
    }
    // A non-root caller: run the CLI as nobody, with a Deno cache it may write.
    const cache = Deno.makeTempDirSync();
    Deno.chmodSync(cache, 0o1777); // like /tmp: others may write, sticky
    traversable(s);
    try {
      const asNobody = (args: string[]) =>
        sh(
          `DENO_DIR=${shq(cache)} HOME=${
            shq(cache)
          } setpriv --reuid=nobody --regid=nogroup --clear-groups ${
            [
              Deno.execPath(),
              "run",
              "-A",
              EXAMPLE,
              "start",
              "--port",
              "0",
              ...args,
            ].map(shq).join(" ")
          }`,
        );
      const r = await asNobody([
        "--pidfile",
        `${cache}/d.pid`,
        "--log-file",
        `${cache}/d.log`,
        "--user",
        "root",
      ]);
      assert.equal(r.code, 4, r.stdout + r.stderr);
      assert.match(
        r.stderr,
        /Insufficient privilege: --user and --group need root/,
      );
      assert.deepEqual(
        [...Deno.readDirSync(cache)].filter((e) => e.name.startsWith("d.")),
        [],
      );

      // Paths the caller may not write: exit 4 with the path named.
      const rootOnly = `${s.dir}/root-only`;
      Deno.mkdirSync(rootOnly, { mode: 0o755 });
      const pid = await asNobody([
        "--pidfile",
        `${rootOnly}/d.pid`,
        "--log-file",
        `${cache}/d.log`,
      ]);
      assert.equal(pid.code, 4, pid.stderr);
      assert.match(
        pid.stderr,
        /Cannot open pidfile ".*root-only\/d\.pid": permission denied/,
      );
      const log = await asNobody([
        "--pidfile",
        `${cache}/d.pid`,
        "--log-file",
        `${rootOnly}/d.log`,
      ]);
      assert.equal(log.code, 4, log.stderr);
      assert.match(
        log.stderr,
        /Cannot open log file ".*root-only\/d\.log": permission denied/,
      );
      assert.deepEqual([...Deno.readDirSync(rootOnly)], [], "nothing created");
      assert.ok(
        !(await sh(`pgrep -f ${shq(`${cache}/d.pid`)}`)).stdout.trim(),
        "nothing started",
      );
    } finally {
      Deno.removeSync(cache, { recursive: true });
    }
  });
});
