/**
 * Deno's own caches under `deno run`: a daemon that drops privileges keeps
 * neither a descriptor nor a mapping of root's `DENO_DIR`, holds for writing
 * only what its user could open for writing itself, still loads modules
 * after the drop, and its payload sees `DENO_DIR` as its caller had it.
 */
import assert from "node:assert/strict";
import { libc } from "../ffi/mod.ts";
import { denoDirOf } from "../src/denodir.ts";
import {
  alive,
  asRoot,
  BEHAVE,
  cli,
  cliRunning,
  procEnviron,
  procFds,
  readPid,
  type Scratch,
  sh,
  waitFor,
  withScratch,
} from "./helpers.ts";

const UPGRADE = new URL("./fixtures/upgrade.ts", import.meta.url).pathname;

/** The `DENO_DIR` of a `deno` started with `env` only, in `cwd`, as Deno itself reports it. */
async function denoInfoDir(
  env: Record<string, string>,
  cwd = "/",
): Promise<string> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["info", "--json"],
    env: { NO_COLOR: "1", ...env },
    clearEnv: true,
    cwd,
  }).output();
  assert.ok(out.success, new TextDecoder().decode(out.stderr));
  return JSON.parse(new TextDecoder().decode(out.stdout)).denoDir;
}

/** Whether open flags (octal, from fdinfo) allow writing. */
function writable(flags: string): boolean {
  return (parseInt(flags, 8) & 3) !== 0; // O_ACCMODE: O_WRONLY 1, O_RDWR 2
}

/**
 * Everything wrong with what `pid` holds, from the kernel's view: anything
 * in `denoDir` (descriptor or mapping), and anything writable that `uid`
 * could not open for writing itself but the exit record `exitRecord` on fd 8:
 * root's, so that the daemon's user cannot lease it or open it to others,
 * and nothing root does acts on what it says.
 */
function trespasses(
  pid: number,
  denoDir: string,
  uid: number,
  exitRecord: string,
): string[] {
  const inDenoDir = (path: string) =>
    path === denoDir || path.startsWith(`${denoDir}/`);
  const found: string[] = [];
  for (const [fd, target] of procFds(pid)) {
    if (inDenoDir(target)) found.push(`fd ${fd} -> ${target}`);
    const info = Deno.readTextFileSync(`/proc/${pid}/fdinfo/${fd}`);
    if (!writable(info.match(/^flags:\s+([0-7]+)$/m)![1])) continue;
    if (/^(pipe|socket|anon_inode):/.test(target)) continue;
    if (target === "/dev/null") continue;
    if (fd === 8 && target === exitRecord) continue;
    const owner = Deno.statSync(`/proc/${pid}/fd/${fd}`).uid;
    if (owner !== uid) {
      found.push(`fd ${fd} -> ${target} (owner ${owner}) is writable`);
    }
    const deleted = target.match(/^(.*)\/[^/]+ \(deleted\)$/);
    if (deleted && exists(deleted[1])) {
      found.push(`fd ${fd} -> ${target}: its directory is still there`);
    }
  }
  for (const line of Deno.readTextFileSync(`/proc/${pid}/maps`).split("\n")) {
    const [range, perms, , , , ...rest] = line.split(/\s+/);
    const path = rest.join(" ");
    if (!path.startsWith("/")) continue;
    if (inDenoDir(path)) found.push(`mapping of ${path}`);
    if (perms[1] === "w" && perms[3] === "s") {
      const owner = Deno.statSync(`/proc/${pid}/map_files/${range}`).uid;
      if (owner !== uid) {
        found.push(`shared writable mapping of ${path} (owner ${owner})`);
      }
    }
  }
  return found;
}

function exists(path: string): boolean {
  try {
    Deno.statSync(path);
    return true;
  } catch {
    return false;
  }
}

async function nobodyUid(): Promise<number> {
  return Number((await sh("id -u nobody")).stdout.trim());
}

for (const restart of [[], ["--restart", "on-failure"]]) {
  Deno.test({
    ...asRoot(
      `${
        ["start --user nobody", ...restart].join(" ")
      } under deno run leaves the daemon nothing of root's Deno caches, and it still imports modules after the drop`,
    ),
    fn: () =>
      withScratch(async (s) => {
        Deno.chmodSync(s.dir, 0o755);
        const denoDir = await denoInfoDir(Deno.env.toObject(), Deno.cwd());
        const uid = await nobodyUid();
        const r = await cli(BEHAVE, [
          "start",
          ...s.paths,
          "--behavior",
          "import-after-ready",
          "--user",
          "nobody",
          ...restart,
        ]);
        assert.equal(r.code, 0, r.stdout + r.stderr);
        const [pid, supervisor] = [
          ...r.stdout.matchAll(/pid (\d+)/g),
        ].map((m) => s.track(Number(m[1]))!);
        await waitFor("the import after ready", () => /Import/.test(s.log()));
        assert.match(s.log(), /Imported behave\.imported as uid \d+/, s.log());
        assert.equal(Deno.statSync(`/proc/${pid}`).uid, uid);
        assert.deepEqual(
          trespasses(pid, denoDir, uid, `${s.dir}/d.exit`),
          [],
        );
        // What it holds of its own Deno is there, handed over, not closed.
        assert.ok(
          [...procFds(pid).values()].some((t) => t.endsWith(" (deleted)")),
        );
        if (supervisor !== undefined) {
          // The supervisor stays root: what it holds is root's to hold.
          assert.equal(Deno.statSync(`/proc/${supervisor}`).uid, 0);
        }
        const stop = await cli(BEHAVE, ["stop", ...s.paths]);
        assert.equal(stop.code, 0, stop.stdout + stop.stderr);
      }),
  });
}

/**
 * The process below `pid` (its descendants), other than `except`, that
 * booted with a private `DENO_DIR`, tracked, and that directory; once it is
 * there.
 */
async function privateDenoDirBelow(
  s: Scratch,
  pid: number,
  except?: number,
): Promise<{ pid: number; dir: string }> {
  let found: { pid: number; dir: string } | undefined;
  const look = () => {
    for (const queue = [pid]; queue.length > 0;) {
      const p = queue.shift()!;
      let children: number[];
      try {
        children = Deno.readTextFileSync(`/proc/${p}/task/${p}/children`)
          .trim().split(" ").filter((c) => c !== "").map(Number);
      } catch {
        continue; // gone
      }
      for (const child of children) {
        try {
          const env = procEnviron(child).find((e) =>
            e.startsWith("DENO_DIR=/run/denod-deno-")
          );
          if (env !== undefined && child !== except) {
            found = { pid: s.track(child)!, dir: env.slice(9) };
            return true;
          }
        } catch {
          // gone
        }
        queue.push(child);
      }
    }
    return false;
  };
  await waitFor(`a process below pid ${pid} with a private DENO_DIR`, look);
  return found!;
}

/**
 * Kill the daemon that the running command `cmd` started while it
 * prepares, still root, and check that its private `DENO_DIR` goes with it.
 * It is found below `cmd`, or below the supervisor the pidfile names when
 * `old` (the generation it upgrades) is given and supervised.
 */
async function killedWhilePreparing(
  s: Scratch,
  cmd: ReturnType<typeof cliRunning>,
  old?: { pid: number; supervised: boolean },
): Promise<void> {
  await waitFor(
    "the daemon to prepare",
    () => /Preparing slowly/.test(s.log()),
  );
  const daemon = await privateDenoDirBelow(
    s,
    old?.supervised ? readPid(s.pidfile)! : cmd.pid,
    old?.pid,
  );
  assert.ok(exists(daemon.dir), daemon.dir);
  Deno.kill(daemon.pid, "SIGKILL");
  const r = await cmd.result;
  assert.equal(r.code, 1, r.stdout + r.stderr);
  await waitFor(`${daemon.dir} to be removed`, () => !exists(daemon.dir));
}

for (const restart of [[], ["--restart", "on-failure"]]) {
  Deno.test({
    ...asRoot(
      `${
        ["start --user nobody", ...restart].join(" ")
      } under deno run: a daemon killed before its drop leaves no private DENO_DIR behind`,
    ),
    fn: () =>
      withScratch(async (s) => {
        Deno.chmodSync(s.dir, 0o755);
        await killedWhilePreparing(
          s,
          cliRunning(s, BEHAVE, [
            "start",
            ...s.paths,
            "--behavior",
            "slow-prepare",
            "--user",
            "nobody",
            ...restart,
          ]),
        );
      }),
  });

  Deno.test({
    ...asRoot(
      `${
        ["upgrade --user nobody", ...restart].join(" ")
      } under deno run: a new generation killed before its drop leaves no private DENO_DIR behind`,
    ),
    fn: () =>
      withScratch(async (s) => {
        Deno.chmodSync(s.dir, 0o755);
        const r = await cli(UPGRADE, [
          "start",
          ...s.paths,
          "--user",
          "nobody",
          ...restart,
        ]);
        assert.equal(r.code, 0, r.stdout + r.stderr);
        const old = s.track(Number(r.stdout.match(/pid (\d+)/)![1]))!;
        await killedWhilePreparing(
          s,
          cliRunning(s, UPGRADE, [
            "upgrade",
            ...s.paths,
            "--fail",
            "slow-prepare",
          ]),
          { pid: old, supervised: restart.length > 0 },
        );
        assert.ok(alive(old), "the old generation serves on");
        const stop = await cli(UPGRADE, ["stop", ...s.paths]);
        assert.equal(stop.code, 0, stop.stdout + stop.stderr);
      }),
  });
}

Deno.test({
  ...asRoot(
    "`start --user` under deno run leaves no private DENO_DIR once it reported the daemon ready, even ready in prepare",
  ),
  fn: () =>
    withScratch(async (s) => {
      Deno.chmodSync(s.dir, 0o755);
      const r = await cli(BEHAVE, [
        "start",
        ...s.paths,
        "--user",
        "nobody",
        "--behavior",
        "ready-in-prepare",
      ]);
      assert.equal(r.code, 0, r.stdout + r.stderr);
      const pid = s.track()!;
      const dir = procEnviron(pid).find((e) =>
        e.startsWith("DENO_DIR=/run/denod-deno-")
      )?.slice("DENO_DIR=".length);
      assert.ok(dir !== undefined, "no private DENO_DIR");
      // Nobody waits for the daemon any more: killed now (SIGKILL, the OOM
      // killer), it would leave the directory in /run for ever.
      const left = (() => {
        try {
          Deno.statSync(dir);
          return true;
        } catch {
          return false;
        }
      })();
      Deno.kill(pid, "SIGKILL");
      if (left) {
        await waitFor("the daemon's end", () => !alive(pid));
        Deno.removeSync(dir, { recursive: true });
      }
      assert.ok(!left, `${dir} is there after start said the daemon started`);
    }),
});

Deno.test({
  ...asRoot(
    "start --user nobody under deno run gives the payload's children DENO_DIR as the caller had it",
  ),
  fn: () =>
    withScratch(async (s) => {
      Deno.chmodSync(s.dir, 0o755);
      const out = `${s.dir}/out`;
      Deno.mkdirSync(out);
      Deno.chmodSync(out, 0o777);
      const args = ["--behavior", "spawn-child", "--user", "nobody"];
      const child = async (report: string, env: Record<string, string>) => {
        const r = await cli(BEHAVE, [
          "start",
          ...s.paths,
          ...args,
          "--report",
          report,
        ], { env });
        s.track();
        assert.equal(r.code, 0, r.stdout + r.stderr);
        const seen = Deno.readTextFileSync(report).split("FDS\n")[0];
        assert.equal((await cli(BEHAVE, ["stop", ...s.paths])).code, 0);
        return seen.split("\n").filter((l) => l.startsWith("DENO_DIR="));
      };
      const denoDir = await denoInfoDir(Deno.env.toObject(), Deno.cwd());
      assert.deepEqual(
        await child(`${out}/given`, { DENO_DIR: denoDir }),
        [`DENO_DIR=${denoDir}`],
      );
      if (Deno.env.get("DENO_DIR") === undefined) {
        assert.deepEqual(await child(`${out}/unset`, {}), []);
      }
    }),
});

Deno.test("denoDirOf() finds the DENO_DIR Deno itself uses", async () => {
  const home = Deno.makeTempDirSync();
  try {
    const me = libc().lookupUser(String(libc().geteuid()))!;
    for (
      const env of <Record<string, string>[]> [
        { HOME: home },
        { HOME: home, XDG_CACHE_HOME: `${home}/xdg` },
        { HOME: home, XDG_CACHE_HOME: "", DENO_DIR: "rel/deno" },
        { HOME: "", DENO_DIR: "" },
        {},
      ]
    ) {
      const expected = await denoInfoDir(env, home);
      const cwd = Deno.cwd();
      Deno.chdir(home);
      try {
        assert.equal(denoDirOf(libc(), env), expected, JSON.stringify(env));
      } finally {
        Deno.chdir(cwd);
      }
    }
    assert.equal(denoDirOf(libc(), {}), `${me.home}/.cache/deno`);
  } finally {
    Deno.removeSync(home, { recursive: true });
  }
});
