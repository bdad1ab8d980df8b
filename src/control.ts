/**
 * `stop`, `status` and `reload`: a pid is believed only while the pidfile's
 * lock is held, and is pinned with a pidfd before it is signalled, so a
 * reused pid is never hit.
 *
 * @module
 */
import type { Libc } from "../ffi/mod.ts";
import { records } from "./dropped.ts";
import { DaemonError, Exit, StatusExit } from "./errors.ts";
import {
  inspectPidfile,
  Pidfile,
  PidfileLockedError,
  type PidfileState,
} from "./pidfile.ts";
import { pinChild, pinDaemon, settledState } from "./pin.ts";
import { type Pinned, signal, terminate } from "./process.ts";
import { SUPERVISOR_GRACE } from "./stage.ts";
import {
  readState,
  readSupervisorState,
  readUpgradeFile,
  removeSideFiles,
  type SupervisorState,
} from "./state.ts";
import { ago, formatDuration, plural } from "./words.ts";

/** How often `reload` looks at the daemon's state again. */
const LOOK_AGAIN_MS = 20;

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
    })${upgradeText(libc, path, pid)}`,
  };
}

/**
 * `"; upgrading: pid 10 → pid 12"` while `upgrade` has two generations
 * holding the pidfile's lock, one of them `pid`; the other is named only if
 * the kernel shows it holding the lock too.
 */
function upgradeText(libc: Libc, path: string, pid: number): string {
  const up = readUpgradeFile(libc, path);
  if (up === null || (up.pid !== pid && up.next !== pid)) return "";
  const st = inspectPidfile(libc, path);
  if (st.state !== "running") return "";
  const other = up.pid === pid ? up.next : up.pid;
  if (libc.processView(other, st.file)?.holdsLock !== true) return "";
  return `; upgrading: pid ${up.pid} → pid ${up.next}`;
}

/** `", 12 log records dropped"` when there are any. */
function droppedText(n = 0): string {
  return n > 0 ? `, ${records(n)} dropped` : "";
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
    }; supervised by pid ${sup.pid}, ${restarts}${last}; ${where})${
      sup.upgrade?.outcome === "starting" && sup.upgrade.next !== null
        ? `; upgrading: pid ${sup.upgrade.pid} → pid ${sup.upgrade.next}`
        : ""
    }`,
  };
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
