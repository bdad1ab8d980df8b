/**
 * Helpers for tests that start real daemons: run the CLI, read the kernel's
 * view of a process, wait for conditions, and kill whatever a test started.
 */
import assert from "node:assert/strict";
import { libc, SysError } from "../ffi/mod.ts";

/** The repository's root directory, with a trailing slash. */
export const ROOT = new URL("../", import.meta.url).pathname;
/** The example daemon's entry point. */
export const EXAMPLE = `${ROOT}daemon.ts`;
/** The behaviour fixture's entry point. */
export const BEHAVE = `${ROOT}tests/fixtures/behave.ts`;

/** The outcome of one CLI run. */
export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** How to run one command: where, with what environment, for how long. */
export interface RunOptions {
  cwd?: string;
  env?: Record<string, string>;
  /**
   * Seconds before the command and everything it started are killed and the
   * test fails naming it. No command may hang the suite; heavy ones (a type
   * check, a nested test run) pass more than the default minute, which a
   * daemon command takes only on a badly overloaded machine.
   */
  timeout?: number;
}

/** Run a command with stdin on /dev/null and collect its output. */
function collect(
  program: string,
  args: string[],
  opts: RunOptions,
): Promise<CliResult> {
  return launch(program, args, opts).result;
}

/**
 * Start a command with stdin on /dev/null.
 *
 * @returns Its pid, and its output once it has exited.
 */
function launch(
  program: string,
  args: string[],
  opts: RunOptions,
): { pid: number; result: Promise<CliResult> } {
  const { timeout = 60, ...spawn } = opts;
  const child = new Deno.Command(program, {
    args,
    ...spawn,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  return { pid: child.pid, result: output(child, timeout, program, args) };
}

/** The output of `child`, which is killed with its descendants after `timeout` s. */
async function output(
  child: Deno.ChildProcess,
  timeout: number,
  program: string,
  args: string[],
): Promise<CliResult> {
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    killTree(child.pid);
  }, timeout * 1000);
  // Resolves once every holder of the pipes is gone: on a timeout, that
  // needs the whole tree killed, not only the child (Deno's `signal` option
  // would SIGTERM the child alone and a grandchild would keep the pipes).
  const out = await child.output().finally(() => clearTimeout(timer));
  const dec = new TextDecoder();
  const result = {
    code: out.code,
    stdout: dec.decode(out.stdout),
    stderr: dec.decode(out.stderr),
  };
  if (timedOut) {
    const line = [program, ...args].map((a) => a.slice(0, 200)).join(" ");
    throw new Error(
      `Timed out after ${timeout} s, killed: ${line}\n--- stdout (end)\n${
        result.stdout.slice(-2000)
      }\n--- stderr (end)\n${result.stderr.slice(-2000)}`,
    );
  }
  return result;
}

/** SIGKILL `pid` and all its descendants, found by their parent pids in /proc. */
function killTree(pid: number): void {
  const children = new Map<number, number[]>();
  for (const e of Deno.readDirSync("/proc")) {
    if (!/^\d+$/.test(e.name)) continue;
    try {
      const { ppid } = procStat(Number(e.name));
      children.set(ppid, [...children.get(ppid) ?? [], Number(e.name)]);
    } catch {
      // exited meanwhile
    }
  }
  const tree = [pid];
  for (let i = 0; i < tree.length; i++) {
    tree.push(...children.get(tree[i]) ?? []);
  }
  for (const p of tree) {
    try {
      Deno.kill(p, "SIGKILL");
    } catch {
      // exited meanwhile
    }
  }
}

/** Run `deno run -A <entry> <args>` and collect its output. */
export function cli(
  entry: string,
  args: string[],
  opts: RunOptions = {},
): Promise<CliResult> {
  return collect(Deno.execPath(), ["run", "-A", entry, ...args], opts);
}

/**
 * {@linkcode cli} without waiting for the end: the command runs, tracked,
 * while the test acts on it; `via` is a command that executes it (`env`
 * with options), keeping its pid.
 *
 * @returns Its pid, and its output once it has exited.
 */
export function cliRunning(
  s: Scratch,
  entry: string,
  args: string[],
  { via = [], ...opts }: RunOptions & { via?: string[] } = {},
): { pid: number; result: Promise<CliResult> } {
  const [program, ...rest] = [
    ...via,
    Deno.execPath(),
    "run",
    "-A",
    entry,
    ...args,
  ];
  const run = launch(program, rest, opts);
  s.track(run.pid);
  return run;
}

/**
 * A system tool's path: the tests drive some (logrotate, rsyslogd, setpriv)
 * that live in sbin, which an ordinary user's PATH often lacks.
 */
export function tool(name: string): string {
  const dirs = [
    ...(Deno.env.get("PATH") ?? "").split(":"),
    "/usr/local/sbin",
    "/usr/sbin",
    "/sbin",
  ];
  for (const dir of dirs.filter((d) => d.startsWith("/"))) {
    try {
      if (Deno.statSync(`${dir}/${name}`).isFile) return `${dir}/${name}`;
    } catch {
      // not there
    }
  }
  return name;
}

/** Run a shell command line (for `script`, traps, inherited descriptors). */
export function sh(
  line: string,
  opts: RunOptions = {},
): Promise<CliResult> {
  // The system tools the tests drive (logrotate, rsyslogd, setpriv) live in
  // sbin, which an ordinary user's PATH often lacks.
  const path = `${Deno.env.get("PATH") ?? ""}:/usr/local/sbin:/usr/sbin:/sbin`;
  return collect("/bin/bash", ["-c", line], {
    ...opts,
    env: { PATH: path, ...opts.env },
  });
}

/**
 * `start` a daemon with the scratch pidfile and log, assert it succeeded,
 * and register its pid for cleanup.
 *
 * @returns The daemon's pid.
 */
export async function started(
  s: Scratch,
  entry: string,
  args: string[],
): Promise<number> {
  const r = await cli(entry, ["start", ...s.paths, ...args]);
  assert.equal(r.code, 0, r.stdout + r.stderr);
  // From start's own report: the pidfile may already be gone again when
  // the daemon is one that fails right after it said ready.
  const m = r.stdout.match(/started \(pid (\d+)\)/);
  assert.ok(m, `start reported no pid: ${r.stdout}`);
  return s.track(Number(m[1]))!;
}

/** The `deno run -A` command line for a shell, quoted. */
export function denoLine(entry: string, args: string[]): string {
  return [Deno.execPath(), "run", "-A", entry, ...args].map(shq).join(" ");
}

/**
 * `fn` over `items` with at most `limit` calls in flight, results in order
 * (std's pooledMap, which the project does not depend on).
 */
export async function pooled<T, R>(
  items: readonly T[],
  limit: number,
  fn: (item: T) => Promise<R>,
): Promise<R[]> {
  const results: R[] = [];
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      results[i] = await fn(items[i]);
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, limit) }, worker));
  return results;
}

/**
 * Name and skip flag for a test that needs root (to switch users): run as
 * anyone else it is skipped, and its name in the report says why.
 */
export function asRoot(name: string): { name: string; ignore: boolean } {
  const root = Deno.uid() === 0;
  return { name: root ? name : `${name} (skipped: needs root)`, ignore: !root };
}

/**
 * A home directory for `nobody` (a second, unprivileged local user) in the
 * scratch directory, which it can then traverse.
 */
export function nobodyHome(s: Scratch): string {
  const home = `${s.dir}/home`;
  Deno.mkdirSync(home);
  Deno.chownSync(home, 65534, 65534);
  Deno.chmodSync(s.dir, 0o755);
  return home;
}

/** A shell line that runs `line` as `nobody`, with `home` and a Deno cache there. */
export function asNobodyLine(home: string, line: string): string {
  return `HOME=${shq(home)} DENO_DIR=${
    shq(`${home}/cache`)
  } setpriv --reuid=nobody --regid=nogroup --clear-groups -- ${line}`;
}

/** A process for an attack to aim at; killed with the scratch directory. */
export function victim(s: Scratch): number {
  const child = new Deno.Command("sleep", {
    args: ["300"],
    stdout: "null",
    stderr: "null",
  }).spawn();
  child.unref();
  void child.status;
  return s.track(child.pid)!;
}

/** Quote for bash. */
export function shq(s: string): string {
  return `'${s.replaceAll("'", `'\\''`)}'`;
}

/** Is `pid` alive (and not a zombie)? */
export function alive(pid: number): boolean {
  try {
    const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
    return stat.slice(stat.lastIndexOf(")") + 2)[0] !== "Z";
  } catch {
    return false;
  }
}

/** Fields of `/proc/PID/stat` by their man-page names. */
export function procStat(pid: number): {
  ppid: number;
  pgrp: number;
  session: number;
  ttyNr: number;
} {
  const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
  const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return { ppid: +f[1], pgrp: +f[2], session: +f[3], ttyNr: +f[4] };
}

/** One field of `/proc/PID/status`, e.g. `"Umask"`. */
export function procStatus(pid: number, field: string): string {
  const text = Deno.readTextFileSync(`/proc/${pid}/status`);
  const line = text.split("\n").find((l) => l.startsWith(`${field}:`));
  assert.ok(line, `no ${field} in /proc/${pid}/status`);
  return line.slice(field.length + 1).trim();
}

/**
 * Whether another process than this one (or `holder` only) holds a pidfd
 * on `pid` (`Pid:` in its fdinfo).
 */
export function pidfdOn(pid: number, holder?: number): boolean {
  const holders = holder === undefined
    ? [...Deno.readDirSync("/proc")].map((e) => e.name)
      .filter((name) => /^\d+$/.test(name) && Number(name) !== Deno.pid)
    : [String(holder)];
  for (const name of holders) {
    try {
      for (const fd of Deno.readDirSync(`/proc/${name}/fdinfo`)) {
        const info = Deno.readTextFileSync(`/proc/${name}/fdinfo/${fd.name}`);
        if (new RegExp(`^Pid:\\s+${pid}$`, "m").test(info)) return true;
      }
    } catch {
      // gone, or not ours to read
    }
  }
  return false;
}

/** Targets of every descriptor in `/proc/PID/fd`, by number. */
export function procFds(pid: number): Map<number, string> {
  const fds = new Map<number, string>();
  for (const e of Deno.readDirSync(`/proc/${pid}/fd`)) {
    try {
      fds.set(Number(e.name), Deno.readLinkSync(`/proc/${pid}/fd/${e.name}`));
    } catch {
      // closed meanwhile
    }
  }
  return fds;
}

/** The initial environment of `pid` as the kernel keeps it. */
export function procEnviron(pid: number): string[] {
  return Deno.readTextFileSync(`/proc/${pid}/environ`).split("\0").filter((s) =>
    s !== ""
  );
}

/** Whether signal `n` is set in a hex mask from `/proc/PID/status`. */
export function inMask(hex: string, n: number): boolean {
  return ((BigInt(`0x${hex}`) >> BigInt(n - 1)) & 1n) === 1n;
}

/** Wait until `cond` holds, looking every 20 ms, failing after `ms`. */
export async function waitFor(
  what: string,
  cond: () => boolean | Promise<boolean>,
  ms = 10_000,
  everyMs = 20,
): Promise<void> {
  const deadline = performance.now() + ms;
  while (!(await cond())) {
    if (performance.now() > deadline) {
      throw new Error(`Timed out waiting for ${what}`);
    }
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

/** Read a pid from a pidfile, or `undefined`. */
export function readPid(path: string): number | undefined {
  try {
    const n = Number(Deno.readTextFileSync(path).trim());
    return n > 0 ? n : undefined;
  } catch {
    return undefined;
  }
}

/**
 * A scratch directory for one test, and a registry of every pid the test
 * started: `cleanup()` SIGKILLs them all and removes the directory, even
 * when the test failed. Each is pinned with a pidfd when tracked: pids
 * wrap around within one parallel run here (pid_max 32768), and a kill by
 * number at the end could reach another test's daemon.
 */
export class Scratch {
  readonly dir: string;
  readonly pids = new Set<number>();
  readonly #pidfds = new Map<number, number>();

  constructor() {
    this.dir = Deno.makeTempDirSync({ prefix: "denod-test-" });
  }

  /** Paths for this test's pidfile and log. */
  get pidfile(): string {
    return `${this.dir}/d.pid`;
  }
  get logFile(): string {
    return `${this.dir}/d.log`;
  }
  /** The standard `--pidfile … --log-file …` pair. */
  get paths(): string[] {
    return ["--pidfile", this.pidfile, "--log-file", this.logFile];
  }

  /** Remember the pid in the pidfile (if any) so cleanup kills it. */
  track(pid?: number): number | undefined {
    const p = pid ?? readPid(this.pidfile);
    // Never 0 or 1: kill(0) is the whole process group, 1 is init.
    if (p !== undefined && p > 1) {
      this.pids.add(p);
      this.#pin(p);
    }
    return p;
  }

  /** Hold a pidfd to `pid`, unless it is gone (or held already). */
  #pin(pid: number): void {
    if (this.#pidfds.has(pid)) return;
    try {
      this.#pidfds.set(pid, libc().pidfdOpen(pid));
    } catch {
      // already gone
    }
  }

  /** The log file's text. */
  log(): string {
    try {
      return Deno.readTextFileSync(this.logFile);
    } catch {
      return "";
    }
  }

  /** Kill everything the test started, then remove the directory. */
  cleanup(): void {
    // The pidfile's pid only while it holds the lock: a pid left in a stale
    // pidfile may be another process's by now.
    const pid = readPid(this.pidfile);
    if (pid !== undefined && pid > 1 && holdsLock(pid, this.pidfile)) {
      this.track(pid);
    }
    const c = libc();
    try {
      for (const [pid, pidfd] of this.#pidfds) {
        try {
          c.pidfdSignal(pidfd, "SIGKILL");
        } catch (err) {
          // ESRCH: gone. Anything else: the descriptor is no longer ours
          // (closed by other code in this process); kill by pid then, only
          // a process whose command line names this test's directory.
          const gone = err instanceof SysError && err.code === "ESRCH";
          if (!gone && ours(pid, this.dir)) {
            try {
              Deno.kill(pid, "SIGKILL");
            } catch {
              // gone meanwhile
            }
          }
        }
        try {
          c.close(pidfd);
        } catch {
          // closed by other code in this process
        }
      }
    } finally {
      this.#pidfds.clear();
      Deno.removeSync(this.dir, { recursive: true });
    }
  }
}

/**
 * `deno run -A <entry> run <args>`: the daemon in the foreground, tracked,
 * its stderr read as the test asks (`until`, then `end`).
 */
export function foreground(
  s: Scratch,
  entry: string,
  args: string[],
  env: Record<string, string> = {},
) {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", entry, "run", ...args],
    env,
    stdin: "null",
    stdout: "null",
    stderr: "piped",
  }).spawn();
  s.track(child.pid);
  const reader = child.stderr.pipeThrough(new TextDecoderStream())
    .getReader();
  let err = "";
  return {
    child,
    /** What it wrote to stderr so far. */
    get err() {
      return err;
    },
    /** Read stderr until `text` appears; fail if it ends first. */
    async until(text: string): Promise<void> {
      while (!err.includes(text)) {
        const { value, done } = await reader.read();
        assert.ok(
          !done,
          `stderr ended without ${JSON.stringify(text)}:\n${err}`,
        );
        err += value;
      }
    },
    /** Read stderr to its end, then the exit code. */
    async end(): Promise<number> {
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        err += value;
      }
      return (await child.status).code;
    },
  };
}

/**
 * {@linkcode foreground}: `run --pidfile` of the fixture with a slow
 * `prepare` (`behavior`), once it says it is preparing.
 */
export async function preparing(
  s: Scratch,
  behavior: "slow-prepare" | "slow-prepare-rejects" = "slow-prepare",
  args: string[] = [],
  env: Record<string, string> = {},
): Promise<ReturnType<typeof foreground>> {
  const run = foreground(s, BEHAVE, [
    "--behavior",
    behavior,
    "--pidfile",
    s.pidfile,
    ...args,
  ], env);
  await run.until("Preparing slowly");
  return run;
}

/**
 * Once the test's log has grown past 50 kB since the last rotation, rotate
 * it with Debian's logrotate and the configuration `conf`.
 */
export async function rotateWhenGrown(s: Scratch, conf: string): Promise<void> {
  await waitFor("new lines since the last rotation", () => {
    try {
      return Deno.statSync(s.logFile).size > 50_000;
    } catch {
      return false;
    }
  });
  const r = await sh(`logrotate -f -s ${shq(`${s.dir}/state`)} ${shq(conf)}`);
  assert.equal(r.code, 0, r.stdout + r.stderr);
}

/** Whether process `pid` has `dir` in its command line (a test's scratch directory). */
function ours(pid: number, dir: string): boolean {
  try {
    return Deno.readTextFileSync(`/proc/${pid}/cmdline`).includes(dir);
  } catch {
    return false;
  }
}

/** Whether process `pid` holds the exclusive flock on `path`, as the kernel shows it. */
function holdsLock(pid: number, path: string): boolean {
  try {
    const c = libc();
    return c.processView(pid, c.stat(path))?.holdsLock === true;
  } catch {
    return false;
  }
}

/** Run `fn` with a fresh {@linkcode Scratch}, always cleaning up. */
export async function withScratch(
  fn: (s: Scratch) => Promise<void>,
): Promise<void> {
  const s = new Scratch();
  try {
    await fn(s);
  } finally {
    s.cleanup();
  }
}

/** The example daemon's listening port, from its log. */
export function listeningPort(log: string): number {
  const m = log.match(/Listening on http:\/\/[^:]+:(\d+)\//g);
  assert.ok(m, `no "Listening on" line in the log:\n${log}`);
  return Number(m[m.length - 1].match(/:(\d+)\/$/)![1]);
}
