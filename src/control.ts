/**
 * `stop`, `status` and `reload`: a pid is believed only while the pidfile's
 * lock is held, and is pinned with a pidfd before it is signalled, so a
 * reused pid is never hit.
 *
 * @module
 */
import { type FileStat, type Libc, SysError } from "../ffi/mod.ts";
import { records } from "./dropped.ts";
import { DaemonError, Exit, StatusExit } from "./errors.ts";
import {
  inspectPidfile,
  Pidfile,
  PidfileLockedError,
  type PidfileState,
} from "./pidfile.ts";
import {
  type LaunchRecord,
  readLaunchRecord,
  readState,
  readSupervisorState,
  removeSideFiles,
  type SupervisorState,
} from "./state.ts";
import { oneLine } from "./text.ts";

/**
 * Seconds a supervisor may take beyond the daemon's stop timeout: it waits
 * for the daemon, then kills and reaps it.
 */
export const SUPERVISOR_GRACE = 5;

/** How often a waiting command looks at the pidfile or state file again. */
const LOOK_AGAIN_MS = 20;
const pause = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * The pidfile's state, waiting up to `waitMs` for a starting daemon to
 * write its pid.
 */
export async function settledState(
  libc: Libc,
  path: string,
  waitMs: number,
): Promise<PidfileState> {
  const deadline = performance.now() + waitMs;
  for (;;) {
    const st = inspectPidfile(libc, path);
    if (st.state !== "starting" || performance.now() > deadline) return st;
    await pause(LOOK_AGAIN_MS);
  }
}

/** A process pinned with a pidfd and checked to be the daemon. */
export interface Pinned {
  pid: number;
  pidfd: number;
}

/**
 * Why the kernel's view of `pid` does not match the daemon that should hold
 * the pidfile `file`, or `null` when it does: it holds the exclusive lock
 * on that file, runs this program (or the one that started it), as one of
 * the uids it was started with or drops to.
 */
export function distrust(
  libc: Libc,
  pid: number,
  file: FileStat,
  launch: LaunchRecord | null,
): string | null {
  const view = libc.processView(pid, file);
  if (view === null) return "has exited";
  const root = libc.geteuid() === 0;
  // A non-root caller cannot look into another user's process; the kernel
  // lets it signal only its own anyway.
  if (view.holdsLock === false || (view.holdsLock === null && root)) {
    return "does not hold the pidfile's lock";
  }
  const exes = [Deno.execPath(), launch?.exe];
  if (view.exe !== null && !exes.includes(view.exe)) {
    return `runs ${JSON.stringify(oneLine(view.exe))}, not this program`;
  }
  if (view.exe === null && root) return "runs no executable root can see";
  const uids = launch?.uids ?? [file.uid];
  if (!uids.includes(view.uid) || !uids.includes(view.euid)) {
    return `runs as uid ${view.euid}, not as ${
      uids.map((u) => `uid ${u}`).join(" or ")
    }`;
  }
  return null;
}

/**
 * A pidfd for the daemon that holds the pidfile lock, or `null` when none
 * runs. The pid is read again after the pidfd is opened, and then checked
 * against the kernel's view (see {@linkcode distrust}), so the pidfd is
 * known to refer to the lock holder and not to a process that reused its
 * pid or was named by someone else.
 *
 * @throws {DaemonError} When the pidfile names a process that is not the daemon.
 */
export async function pinDaemon(
  libc: Libc,
  path: string,
  waitMs: number,
): Promise<Pinned | null> {
  for (let attempt = 0; attempt < 50; attempt++) {
    const st = await settledState(libc, path, waitMs);
    if (st.state === "starting") {
      throw new DaemonError(
        `Pidfile ${JSON.stringify(path)} is locked but names no process`,
      );
    }
    if (st.state !== "running") return null;
    let pidfd: number;
    try {
      pidfd = libc.pidfdOpen(st.pid);
    } catch (err) {
      if (err instanceof SysError && err.code === "ESRCH") continue;
      throw err;
    }
    const again = inspectPidfile(libc, path);
    if (again.state !== "running" || again.pid !== st.pid) {
      libc.close(pidfd);
      continue;
    }
    const why = distrust(
      libc,
      st.pid,
      again.file,
      readLaunchRecord(libc, path),
    );
    if (why === null) return { pid: st.pid, pidfd };
    libc.close(pidfd);
    // Gone since: look again; anything else is a pidfile not to believe.
    if (why === "has exited") continue;
    throw new DaemonError(
      `Not trusting pidfile ${
        JSON.stringify(path)
      }: it names pid ${st.pid}, which ${why}`,
    );
  }
  throw new DaemonError(`Pidfile ${JSON.stringify(path)} keeps changing`);
}

/**
 * Send a signal through a pidfd; a process already gone is no error, a
 * refusal is worded for the user.
 */
export function signal(
  libc: Libc,
  pidfd: number,
  pid: number,
  sig: Deno.Signal,
): void {
  try {
    libc.pidfdSignal(pidfd, sig);
  } catch (err) {
    if (err instanceof SysError && err.code === "ESRCH") return;
    if (err instanceof SysError && err.code === "EPERM") {
      throw new DaemonError(
        `Cannot signal pid ${pid}: permission denied`,
        Exit.PRIVILEGE,
        { cause: err },
      );
    }
    throw err;
  }
}

/**
 * SIGTERM a pinned process, wait `stopTimeout` seconds, then SIGKILL it;
 * its pidfd is closed afterwards.
 *
 * @returns `"terminated"` or `"killed"`.
 */
export async function terminate(
  libc: Libc,
  { pid, pidfd }: Pinned,
  stopTimeout: number,
): Promise<"terminated" | "killed"> {
  try {
    signal(libc, pidfd, pid, "SIGTERM");
    if (await libc.pidfdWait(pidfd, stopTimeout * 1000)) return "terminated";
    signal(libc, pidfd, pid, "SIGKILL");
    if (await libc.pidfdWait(pidfd, 10_000)) return "killed";
    throw new DaemonError(`Pid ${pid} survived SIGKILL for 10 s`);
  } finally {
    libc.close(pidfd);
  }
}

/**
 * Remove a pidfile nobody holds, and its side files: left by a killed
 * daemon, by one that no longer had the permission after dropping
 * privileges, or by a supervisor that gave up.
 */
function removeStale(libc: Libc, path: string): boolean {
  try {
    const pidfile = Pidfile.acquire(libc, path);
    removeSideFiles(libc, path);
    pidfile.remove();
    return true;
  } catch (err) {
    if (err instanceof PidfileLockedError) return false;
    throw err;
  }
}

/**
 * What `stop` did: found no daemon (and removed a stale pidfile, or not), or
 * stopped it with SIGTERM (`terminated`) or, after the stop timeout, SIGKILL
 * (`killed`). `pid` is the process the pidfile names: the daemon, or its
 * supervisor (`supervised`).
 */
export type StopResult =
  | { readonly outcome: "not-running"; readonly removedStale: boolean }
  | {
    readonly outcome: "terminated" | "killed";
    readonly pid: number;
    readonly supervised: boolean;
  };

/**
 * Stop the daemon: SIGTERM, wait up to `stopTimeout`, then SIGKILL; remove a
 * pidfile the daemon could not remove itself. A supervisor gets its daemon's
 * stop timeout and {@linkcode SUPERVISOR_GRACE} more: it stops the daemon first.
 */
export async function stop(
  libc: Libc,
  path: string,
  stopTimeout: number,
  readyTimeout: number,
): Promise<StopResult> {
  const daemon = await pinDaemon(libc, path, readyTimeout * 1000);
  if (daemon === null) {
    const st = inspectPidfile(libc, path);
    return {
      outcome: "not-running",
      removedStale: st.state === "stale" && removeStale(libc, path),
    };
  }
  const sup = readSupervisorState(libc, path, daemon.pid);
  const wait = sup === null
    ? stopTimeout
    : Math.max(stopTimeout, sup.stopTimeout) + SUPERVISOR_GRACE;
  const how = await terminate(libc, daemon, wait);
  if (inspectPidfile(libc, path).state === "stale") removeStale(libc, path);
  return { outcome: how, pid: daemon.pid, supervised: sup !== null };
}

/** An LSB `status` exit code: one of {@linkcode StatusExit}'s values. */
export type StatusCode = (typeof StatusExit)[keyof typeof StatusExit];

/** What `status` found, with its LSB exit code. */
export interface StatusResult {
  /** 0 running, 1 dead with pidfile, 3 not running, 4 unknown. */
  readonly code: StatusCode;
  /** One line for the user. */
  readonly message: string;
}

/** `"1 restart"`, `"2 restarts"`. */
export function plural(n: number, word: string): string {
  return `${n} ${word}${n === 1 ? "" : "s"}`;
}

/** `3725` → `"1h 2m 5s"`. */
export function formatDuration(seconds: number): string {
  const d = Math.floor(seconds / 86400);
  const h = Math.floor(seconds / 3600) % 24;
  const m = Math.floor(seconds / 60) % 60;
  const s = seconds % 60;
  const parts = [[d, "d"], [h, "h"], [m, "m"], [s, "s"]] as const;
  const shown = parts.filter(([n], i) => n > 0 || i === 3);
  return shown.map(([n, u]) => `${n}${u}`).join(" ");
}

/** Report whether the daemon runs, with LSB status codes. */
export async function status(
  libc: Libc,
  name: string,
  path: string,
): Promise<StatusResult> {
  let st: PidfileState;
  let daemon: Pinned | null;
  try {
    st = await settledState(libc, path, 2000);
    daemon = st.state === "running" ? await pinDaemon(libc, path, 2000) : null;
  } catch (err) {
    return { code: StatusExit.UNKNOWN, message: (err as Error).message };
  }
  if (daemon !== null) {
    try {
      return runningStatus(libc, name, path, daemon.pid);
    } finally {
      libc.close(daemon.pidfd);
    }
  }
  // Pinned nothing: the daemon exited meanwhile, so judge the file afresh.
  if (st.state === "running") st = inspectPidfile(libc, path);
  switch (st.state) {
    case "running":
    case "starting":
      return {
        code: StatusExit.UNKNOWN,
        message: `${name}: pidfile ${path} is locked but names no process`,
      };
    case "stale": {
      const sup = readSupervisorState(libc, path, st.pid);
      if (sup?.gaveUp) {
        return {
          code: StatusExit.DEAD_WITH_PIDFILE,
          message: `${name} is not running: its supervisor ${sup.gaveUp}, ${
            ago(sup.lastExit?.at)
          } (pidfile ${path} remains; start to try again, stop to clear)`,
        };
      }
      return {
        code: StatusExit.DEAD_WITH_PIDFILE,
        message: `${name} is not running, but its pidfile ${path} remains${
          st.pid === undefined ? "" : ` (pid ${st.pid})`
        }`,
      };
    }
    case "absent":
      return {
        code: StatusExit.NOT_RUNNING,
        message: `${name} is not running`,
      };
  }
}

/** `status` of a verified daemon (or supervisor) `pid`. */
function runningStatus(
  libc: Libc,
  name: string,
  path: string,
  pid: number,
): StatusResult {
  const sup = readSupervisorState(libc, path, pid);
  if (sup !== null) return supervisedStatus(libc, name, path, sup);
  const up = libc.processAge(pid);
  const state = readState(libc, pid);
  const logsTo = state?.logsTo;
  return {
    code: StatusExit.RUNNING,
    message: `${name} is running (pid ${pid}, up ${
      up === undefined ? "unknown" : formatDuration(up)
    }, pidfile ${path}${logsTo ? `, logs to ${logsTo}` : ""}${
      droppedText(state?.droppedRecords)
    })`,
  };
}

/** `", 12 log records dropped"` when there are any. */
function droppedText(n = 0): string {
  return n > 0 ? `, ${records(n)} dropped` : "";
}

/** `"5s ago"`, or `"at an unknown time"`. */
function ago(at: number | undefined): string {
  if (at === undefined) return "at an unknown time";
  return `${
    formatDuration(Math.max(0, Math.round((Date.now() - at) / 1000)))
  } ago`;
}

/** `status` of a daemon under the supervisor of `start --restart`. */
function supervisedStatus(
  libc: Libc,
  name: string,
  path: string,
  sup: SupervisorState,
): StatusResult {
  const restarts = plural(sup.restarts, "restart");
  const last = sup.lastExit === null
    ? ""
    : `, last exit ${sup.lastExit.status} ${ago(sup.lastExit.at)}`;
  // The supervisor's child (not yet reaped, so its pid is not reused).
  const daemon = sup.child !== null &&
      libc.processView(sup.child)?.ppid === sup.pid
    ? readState(libc, sup.child)
    : null;
  const dropped = (sup.droppedRecords ?? 0) + (daemon?.droppedRecords ?? 0);
  const where = `pidfile ${path}, logs to ${sup.logsTo}${droppedText(dropped)}`;
  if (sup.child === null) {
    // Waiting between two runs: nothing serves now.
    const next = sup.nextRestartAt === null ? "shortly" : `in ${
      formatDuration(
        Math.max(0, Math.ceil((sup.nextRestartAt - Date.now()) / 1000)),
      )
    }`;
    return {
      code: StatusExit.NOT_RUNNING,
      message:
        `${name} is not running: restarting ${next} (supervisor pid ${sup.pid}, ${restarts}${last}; ${where})`,
    };
  }
  const up = libc.processAge(sup.child);
  return {
    code: StatusExit.RUNNING,
    message: `${name} is ${
      sup.childReady ? "running" : "starting"
    } (pid ${sup.child}, up ${
      up === undefined ? "unknown" : formatDuration(up)
    }; supervised by pid ${sup.pid}, ${restarts}${last}; ${where})`,
  };
}

/**
 * The supervisor's running daemon, pinned and checked to be its child, or
 * `null` between two runs.
 */
function pinChild(
  libc: Libc,
  supervisor: number,
  child: number,
): Pinned | null {
  let pidfd: number;
  try {
    pidfd = libc.pidfdOpen(child);
  } catch {
    return null;
  }
  if (libc.processView(child)?.ppid === supervisor) {
    return { pid: child, pidfd };
  }
  libc.close(pidfd);
  return null;
}

/**
 * Send SIGHUP and wait for the daemon to report the outcome of a reload
 * that started after the signal. Under a supervisor, the signal goes to the
 * supervisor, which passes it on, and the outcome comes from its daemon.
 *
 * @returns The reloaded daemon's pid.
 * @throws {DaemonError} Exit 7 when not running, 1 with the hook's error.
 */
export async function reload(
  libc: Libc,
  path: string,
  timeout: number,
): Promise<number> {
  const daemon = await pinDaemon(libc, path, timeout * 1000);
  if (daemon === null) throw new DaemonError("Not running", Exit.NOT_RUNNING);
  let child: Pinned | null = null;
  try {
    // Under a supervisor the reload is its daemon's: watch that one live.
    const sup = readSupervisorState(libc, path, daemon.pid);
    if (sup !== null) {
      child = sup.child === null ? null : pinChild(libc, daemon.pid, sup.child);
      if (child === null) {
        throw new DaemonError(
          "Not running: the supervisor is waiting to restart it",
          Exit.NOT_RUNNING,
        );
      }
    }
    const watched = child ?? daemon;
    const before = readState(libc, watched.pid);
    if (before === null) {
      throw new DaemonError(
        sup === null
          ? `Cannot reload pid ${daemon.pid}: it publishes no state`
          : `Cannot reload pid ${watched.pid}: it is still starting`,
      );
    }
    signal(libc, daemon.pidfd, daemon.pid, "SIGHUP");
    const deadline = performance.now() + timeout * 1000;
    while (performance.now() < deadline) {
      const now = readState(libc, watched.pid);
      if (now !== null && now.reloadsDone > before.reloadsRequested) {
        if (now.lastReloadError !== null) {
          throw new DaemonError(`Reload failed: ${now.lastReloadError}`);
        }
        return watched.pid;
      }
      if (await libc.pidfdWait(watched.pidfd, LOOK_AGAIN_MS)) {
        throw new DaemonError(`Pid ${watched.pid} exited during the reload`);
      }
    }
    throw new DaemonError(`No reload outcome within ${timeout} s`);
  } finally {
    libc.close(daemon.pidfd);
    if (child !== null) libc.close(child.pidfd);
  }
}
