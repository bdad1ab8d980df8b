/**
 * What `mod.ts` offers programs that control a daemon from code of their
 * own: the control commands and the pidfile, each taking the pidfile's path
 * and an options object. The modules behind them take the OS interface as
 * their first parameter, so that they can be driven by another one; that
 * interface is the FFI seam and stays out of the published API.
 *
 * Every function here calls libc through FFI: it needs `--allow-ffi`, which
 * in effect grants every permission.
 *
 * @module
 */
import { libc } from "../ffi/mod.ts";
import type { StatusResult, StopResult } from "./control.ts";
import { CORE_OPTIONS, resolvePath } from "./options.ts";
import * as pidfiles from "./pidfile.ts";

/** The CLI's defaults, so that code and command line behave alike. */
const STOP_TIMEOUT = Number(CORE_OPTIONS["stop-timeout"].default);
const READY_TIMEOUT = Number(CORE_OPTIONS["ready-timeout"].default);

/** What {@linkcode stop} may be told. */
export interface StopOptions {
  /**
   * Seconds the daemon has to stop after SIGTERM before it gets SIGKILL (a
   * supervisor gets its daemon's stop timeout, and 5 s more).
   *
   * @default {10}
   */
  readonly stopTimeout?: number;
  /**
   * Seconds to wait for a daemon that is starting (its pidfile locked, no
   * pid written yet) to write its pid.
   *
   * @default {30}
   */
  readonly readyTimeout?: number;
}

/** What {@linkcode status} may be told. */
export interface StatusOptions {
  /**
   * The daemon's name, which starts the message.
   *
   * @default {The pidfile's name without `.pid`}
   */
  readonly name?: string;
}

/** What {@linkcode reload} may be told. */
export interface ReloadOptions {
  /**
   * Seconds to wait for the outcome of the reload (and for a starting
   * daemon to write its pid).
   *
   * @default {30}
   */
  readonly timeout?: number;
}

/** What {@linkcode reload} did. */
export interface ReloadResult {
  /** The pid of the daemon that reloaded (under a supervisor, its daemon's). */
  readonly pid: number;
}

/** What a pidfile says about its daemon, judged by its lock. */
export type PidfileState =
  /** No pidfile. */
  | { readonly state: "absent" }
  /** The lock is held and the file names this pid. */
  | { readonly state: "running"; readonly pid: number }
  /** The lock is held but no pid is written yet: a daemon is starting. */
  | { readonly state: "starting" }
  /** The file exists but nobody holds its lock: its daemon is gone. */
  | { readonly state: "stale"; readonly pid: number | undefined };

/**
 * The control commands, loaded on first use: a program that imports denod
 * for its daemon's other stages does not compile them.
 */
function control(): Promise<typeof import("./control.ts")> {
  return import("./control.ts");
}

/** `value` seconds, checked as `--stop-timeout` and friends are. */
function seconds(name: string, value: number | undefined, fallback: number) {
  if (value === undefined) return fallback;
  if (!(value > 0 && value <= 86400)) {
    throw new RangeError(
      `Invalid ${name}: ${
        JSON.stringify(value)
      } (expected seconds, more than 0 and at most 86400)`,
    );
  }
  return value;
}

/** An absolute path: a relative one is taken from the current directory. */
function absolute(path: string): string {
  return resolvePath(Deno.cwd(), path);
}

/**
 * Stop the daemon that holds `pidfile`: SIGTERM, then SIGKILL after
 * `stopTimeout`. A pidfile nobody holds is removed. The pid is believed only
 * while the pidfile's lock is held, and signalled through a pidfd, so a
 * reused pid is never hit.
 *
 * Needs `--allow-ffi` (in effect every permission).
 *
 * @param pidfile The daemon's pidfile; a relative path is taken from the current directory.
 * @param options Timeouts.
 * @returns What was found and done.
 * @throws {DaemonError} When the pidfile cannot be trusted, or the daemon cannot be signalled (exit code 4).
 * @throws {RangeError} For a timeout that is not a number of seconds.
 *
 * @example Stopping a daemon that does not run
 * ```ts
 * import assert from "node:assert/strict";
 * import { stop } from "./api.ts";
 *
 * const dir = await Deno.makeTempDir();
 * const result = await stop(`${dir}/myd.pid`, { stopTimeout: 5 });
 * assert.deepEqual(result, {
 *   outcome: "not-running",
 *   removedStale: false,
 *   cleared: null,
 * });
 * await Deno.remove(dir);
 * ```
 */
export function stop(
  pidfile: string,
  options: StopOptions = {},
): Promise<StopResult> {
  const args = [
    libc(),
    absolute(pidfile),
    seconds("stopTimeout", options.stopTimeout, STOP_TIMEOUT),
    seconds("readyTimeout", options.readyTimeout, READY_TIMEOUT),
  ] as const;
  return control().then((c) => c.stop(...args));
}

/**
 * Say whether the daemon that should hold `pidfile` runs, with the LSB
 * `status` exit code and the line `status` prints. Never throws for what it
 * finds: a pidfile it cannot judge is code 4.
 *
 * Needs `--allow-ffi` (in effect every permission).
 *
 * @param pidfile The daemon's pidfile; a relative path is taken from the current directory.
 * @param options The daemon's name.
 * @returns The code (0 running, 1 dead, 3 not running, 4 unknown), the
 * message, and the report `status --json` prints.
 *
 * @example Asking about a daemon that does not run
 * ```ts
 * import assert from "node:assert/strict";
 * import { status } from "./api.ts";
 *
 * const dir = await Deno.makeTempDir();
 * const result = await status(`${dir}/myd.pid`);
 * assert.equal(result.code, 3);
 * assert.equal(result.message, "myd is not running");
 * assert.equal(result.report.state, "stopped");
 * await Deno.remove(dir);
 * ```
 */
export function status(
  pidfile: string,
  options: StatusOptions = {},
): Promise<StatusResult> {
  const path = absolute(pidfile);
  const name = options.name ??
    path.slice(path.lastIndexOf("/") + 1).replace(/\.pid$/, "");
  const os = libc();
  return control().then((c) => c.status(os, name, path));
}

/**
 * Ask the daemon that holds `pidfile` to reload (SIGHUP: it reopens its log
 * file, then runs its reload hook and handlers) and wait for the outcome.
 *
 * Needs `--allow-ffi` (in effect every permission).
 *
 * @param pidfile The daemon's pidfile; a relative path is taken from the current directory.
 * @param options How long to wait.
 * @returns The pid that reloaded.
 * @throws {DaemonError} With exit code 7 when no daemon runs; 1 with the
 * reload's own error message when it failed.
 * @throws {RangeError} For a timeout that is not a number of seconds.
 *
 * @example Reloading a daemon that does not run
 * ```ts
 * import assert from "node:assert/strict";
 * import { DaemonError, Exit } from "./errors.ts";
 * import { reload } from "./api.ts";
 *
 * const dir = await Deno.makeTempDir();
 * await assert.rejects(
 *   reload(`${dir}/myd.pid`, { timeout: 5 }),
 *   (err) => err instanceof DaemonError && err.exitCode === Exit.NOT_RUNNING,
 * );
 * await Deno.remove(dir);
 * ```
 */
export async function reload(
  pidfile: string,
  options: ReloadOptions = {},
): Promise<ReloadResult> {
  const timeout = seconds("timeout", options.timeout, READY_TIMEOUT);
  const os = libc();
  return {
    pid: await (await control()).reload(os, absolute(pidfile), timeout),
  };
}

/**
 * Judge a pidfile by its lock, without disturbing a daemon that holds it. A
 * pid is believed only while the lock is held; whether that process is the
 * daemon is for {@linkcode stop} and {@linkcode status}, which check it.
 *
 * Needs `--allow-ffi` (in effect every permission).
 *
 * @param pidfile The pidfile; a relative path is taken from the current directory.
 * @returns Its state.
 * @throws {DaemonError} When the file cannot be trusted or read (exit code 4
 * for permission).
 *
 * @example A pidfile this process holds
 * ```ts
 * import assert from "node:assert/strict";
 * import { inspectPidfile, Pidfile } from "./api.ts";
 *
 * const dir = await Deno.makeTempDir();
 * const path = `${dir}/myd.pid`;
 * assert.deepEqual(inspectPidfile(path), { state: "absent" });
 * const pidfile = Pidfile.acquire(path);
 * pidfile.write(Deno.pid);
 * // Our own lock, seen through another descriptor, is still a lock:
 * assert.equal(inspectPidfile(path).state, "running");
 * pidfile.remove();
 * await Deno.remove(dir);
 * ```
 */
export function inspectPidfile(pidfile: string): PidfileState {
  const st = pidfiles.inspectPidfile(libc(), absolute(pidfile));
  // Without the file's identity, which only the control commands need.
  switch (st.state) {
    case "absent":
    case "starting":
      return { state: st.state };
    case "running":
      return { state: "running", pid: st.pid };
    case "stale":
      return { state: "stale", pid: st.pid };
  }
}

/**
 * A pidfile this process holds locked (`flock`) until it is removed or
 * closed: the file a daemon keeps for its whole life, and the lock by which
 * {@linkcode stop}, {@linkcode status} and {@linkcode inspectPidfile} know
 * it runs. It is reached from `/` without following a symlink, only where
 * nobody but root or the caller can change what its path names, and created
 * mode 0644.
 *
 * Needs `--allow-ffi` (in effect every permission).
 *
 * @example Holding a pidfile while a job runs
 * ```ts
 * import assert from "node:assert/strict";
 * import { Pidfile } from "./api.ts";
 *
 * const dir = await Deno.makeTempDir();
 * const pidfile = Pidfile.acquire(`${dir}/job.pid`);
 * pidfile.write(Deno.pid);
 * pidfile.closeWriter(); // only the lock is held from now on
 * assert.equal(pidfile.read(), Deno.pid);
 * // … the job …
 * pidfile.remove();
 * await Deno.remove(dir);
 * ```
 */
export class Pidfile {
  #locked: pidfiles.Pidfile;

  private constructor(locked: pidfiles.Pidfile) {
    this.#locked = locked;
  }

  /**
   * Open (creating it if needed) and lock a pidfile. Its content is left as
   * it was: a stale pid stays until {@linkcode Pidfile.write}.
   *
   * @param path The pidfile; a relative path is taken from the current directory.
   * @returns The locked pidfile.
   * @throws {PidfileLockedError} When another process holds the lock.
   * @throws {DaemonError} When it cannot be used, with the reason.
   */
  static acquire(path: string): Pidfile {
    return new Pidfile(pidfiles.Pidfile.acquire(libc(), absolute(path)));
  }

  /** The absolute path. */
  get path(): string {
    return this.#locked.path;
  }

  /**
   * Write `pid` and a newline, replacing the content, while locked.
   *
   * @param pid The pid to record, usually `Deno.pid`.
   * @throws {Error} After {@linkcode Pidfile.closeWriter}.
   */
  write(pid: number): void {
    this.#locked.write(pid);
  }

  /**
   * Close the descriptor the pid is written through: only the lock is held
   * from now on, on a read-only descriptor, so code that runs after this
   * (unprivileged, say) cannot write another pid into the file.
   */
  closeWriter(): void {
    this.#locked.closeWriter();
  }

  /**
   * The pid in the file.
   *
   * @returns The pid, or `undefined` while none (or no valid one) is written.
   */
  read(): number | undefined {
    return this.#locked.read();
  }

  /**
   * Whether the path still names the file this object holds locked.
   *
   * @returns `false` once it was removed or replaced, or after {@linkcode Pidfile.close}.
   */
  isCurrent(): boolean {
    return this.#locked.isCurrent();
  }

  /**
   * Unlink the file if it is still ours, then release the lock; the unlink
   * happens while the lock is held, so no other process takes a file that is
   * about to vanish. Safe to call twice.
   *
   * @returns `false` when the file could not be unlinked (no permission).
   */
  remove(): boolean {
    return this.#locked.remove();
  }

  /** Release the lock and leave the file. */
  close(): void {
    this.#locked.close();
  }
}
