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
  endedBadly,
  type ExitRecord,
  readExitRecord,
  readLaunchRecord,
  readState,
  readSupervisorState,
  readUpgradeFile,
  removeSideFiles,
  type SupervisorState,
} from "./state.ts";
import { ago, formatDuration, plural } from "./words.ts";

/** Seconds `stop` gives a daemon beyond its stop timeout before SIGKILL. */
const STOP_GRACE = 1;

/** How often `reload` looks at the daemon's state again. */
const LOOK_AGAIN_MS = 20;

/**
 * Remove a pidfile nobody holds, and its side files: left by a killed
 * daemon, by one that no longer had the permission after dropping
 * privileges, or by a supervisor that gave up.
 */
function removeStale(libc: Libc, path: string, keepExit = false): boolean {
  try {
    const pidfile = Pidfile.acquire(libc, path);
    removeSideFiles(libc, path, { keepExit });
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
  | {
    readonly outcome: "not-running";
    readonly removedStale: boolean;
    /** How its last run ended, when a record said so; the record is cleared. */
    readonly cleared: StatusReport["lastExit"];
  }
  | {
    readonly outcome: "terminated" | "killed";
    readonly pid: number;
    readonly supervised: boolean;
  };

/**
 * Stop the daemon: SIGTERM, wait up to `stopTimeout` (and a second more, for
 * the daemon's own deadline to end it), then SIGKILL; remove a
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
    // What the last run left — pidfile, records — goes: the next status
    // says "not running", not how that run ended.
    const st = inspectPidfile(libc, path);
    const record = readExitRecord(libc, path);
    const removed = (st.state === "stale" ||
      (st.state === "absent" && record !== null)) && removeStale(libc, path);
    return {
      outcome: "not-running",
      removedStale: removed && st.state === "stale",
      cleared: removed ? lastExitOf(record) : null,
    };
  }
  const sup = readSupervisorState(libc, path, daemon.pid);
  // The daemon's own deadline comes first (it logs and records why it
  // ends); SIGKILL is for a daemon that cannot even do that.
  const wait = sup === null
    ? stopTimeout + STOP_GRACE
    : Math.max(stopTimeout, sup.stopTimeout) + SUPERVISOR_GRACE;
  const how = await terminate(libc, daemon, wait);
  // The daemon's own word on its end stays, for status.
  if (inspectPidfile(libc, path).state === "stale") {
    removeStale(libc, path, true);
  }
  return { outcome: how, pid: daemon.pid, supervised: sup !== null };
}

/** An LSB `status` exit code: one of {@linkcode StatusExit}'s values. */
export type StatusCode = (typeof StatusExit)[keyof typeof StatusExit];

/**
 * What `status` knows of a daemon, as `status --json` prints it.
 *
 * `state`: `running` (ready), `starting` (not ready yet), `restarting` (its
 * supervisor waits to start it again), `stopped` (never started, stopped as
 * asked, or done with status 0), `dead` (it ended badly — an error, a
 * signal, a non-zero status, no word: `lastExit` says how), `failed` (its
 * supervisor gave up), `unknown` (the pidfile cannot be judged).
 */
export interface StatusReport {
  /** The daemon's name (`NAME@INSTANCE` for an instance). */
  name: string;
  /** The instance (`--instance`), or `null`. */
  instance: string | null;
  /** See above. */
  state:
    | "running"
    | "starting"
    | "restarting"
    | "stopped"
    | "dead"
    | "failed"
    | "unknown";
  /** The daemon's pid, while one runs. */
  pid: number | null;
  /** Its supervisor's pid, under `start --restart`. */
  supervisorPid: number | null;
  /** Seconds the daemon has been up, while it runs. */
  uptime: number | null;
  /** Restarts by its supervisor since `start`, under `start --restart`. */
  restarts: number | null;
  /**
   * How the last run ended, and when (ms since the epoch): `how` is one of
   * `stopped`, `failed`, `returned`, `exited`, `killed`, `upgraded`; `detail`
   * says what (a signal, an error's message); `code` is its exit status
   * when known. In the daemon's own words: shown, never acted upon.
   */
  lastExit:
    | { how: string; detail: string; code: number | null; at: number }
    | null;
  /** The pidfile. */
  pidfile: string;
  /** Where the daemon logs, in words. */
  logsTo: string | null;
  /** The options it was started with (by long name), as recorded by `start`. */
  options: Record<string, string | true> | null;
}

/** What `status` found, with its LSB exit code. */
export interface StatusResult {
  /** 0 running, 1 dead with pidfile, 3 not running, 4 unknown. */
  readonly code: StatusCode;
  /** One line for the user. */
  readonly message: string;
  /** The same, for programs (`status --json`). */
  readonly report: StatusReport;
}

/** What every report of one `status` has. */
type Base = Pick<StatusReport, "pidfile" | "logsTo" | "options" | "instance">;

/** A result: its code, message, and report (over what every report has). */
function result(
  code: StatusCode,
  message: string,
  report: Partial<StatusReport> & Pick<StatusReport, "name" | "state">,
  base: Base,
): StatusResult {
  return {
    code,
    message,
    // The fields in the documented order, whatever the spreads hold.
    report: Object.assign(
      {
        name: "",
        instance: null,
        state: "unknown",
        pid: null,
        supervisorPid: null,
        uptime: null,
        restarts: null,
        lastExit: null,
        pidfile: "",
        logsTo: null,
        options: null,
      },
      base,
      report,
    ),
  };
}

/** How a run ended, in words: `"failed (uncaught error: boom)"`. */
function ending(record: ExitRecord): string {
  if (record.how === "running") {
    return "ended without saying how (killed by SIGKILL, the OOM killer, or a crash)";
  }
  return record.detail === "" ? record.how : `${record.how} (${record.detail})`;
}

/** The report's `lastExit` for an exit record. */
function lastExitOf(record: ExitRecord | null): StatusReport["lastExit"] {
  if (record === null || record.how === "running") return null;
  const { how, detail, code, at } = record;
  return { how, detail, code, at };
}

/**
 * Report whether the daemon runs, with LSB status codes.
 *
 * @param about Where it logs when it does not say so itself (from its
 * options), and which instance it is.
 */
export async function status(
  libc: Libc,
  name: string,
  path: string,
  about: { logsTo?: string | null; instance?: string | null } = {},
): Promise<StatusResult> {
  const base: Base = {
    pidfile: path,
    logsTo: about.logsTo ?? null,
    options: readLaunchRecord(libc, path)?.options ?? null,
    instance: about.instance ?? null,
  };
  let st: PidfileState;
  let daemon: Pinned | null;
  try {
    st = await settledState(libc, path, 2000);
    daemon = st.state === "running" ? await pinDaemon(libc, path, 2000) : null;
  } catch (err) {
    return result(
      StatusExit.UNKNOWN,
      (err as Error).message,
      { name, state: "unknown" },
      base,
    );
  }
  if (daemon !== null) {
    try {
      return runningStatus(libc, name, path, daemon.pid, base);
    } finally {
      libc.close(daemon.pidfd);
    }
  }
  // Pinned nothing: the daemon exited meanwhile, so judge the file afresh.
  if (st.state === "running") st = inspectPidfile(libc, path);
  let record = readExitRecord(libc, path);
  const lastExit = lastExitOf(record);
  switch (st.state) {
    case "running":
    case "starting":
      return result(
        StatusExit.UNKNOWN,
        `${name}: pidfile ${path} is locked but names no process`,
        { name, state: "unknown" },
        base,
      );
    case "stale": {
      const sup = readSupervisorState(libc, path, st.pid);
      if (sup?.gaveUp) {
        return result(
          StatusExit.DEAD_WITH_PIDFILE,
          `${name} is not running: its supervisor ${sup.gaveUp}, ${
            ago(sup.lastExit?.at)
          } (pidfile ${path} remains; start to try again, stop to clear)`,
          {
            name,
            state: "failed",
            restarts: sup.restarts,
            lastExit: lastExit ?? supervisedExit(sup),
          },
          base,
        );
      }
      // A generation that replaced the one the record speaks of, and ended
      // without a word: dead, as if there were no record.
      if (record?.how === "upgraded" && record.pid !== st.pid) {
        record = { ...record, how: "running", pid: st.pid ?? 0 };
      }
      if (record !== null && !endedBadly(record)) {
        return stoppedStatus(name, record, base);
      }
      const how = record === null
        ? ""
        : `: it ${ending(record)}${
          record.how === "running" ? "" : ` ${ago(record.at)}`
        }`;
      return result(
        StatusExit.DEAD_WITH_PIDFILE,
        `${name} is not running, but its pidfile ${path} remains${
          st.pid === undefined ? "" : ` (pid ${st.pid})`
        }${how}`,
        { name, state: "dead", lastExit },
        base,
      );
    }
    case "absent":
      if (record !== null && endedBadly(record)) {
        return result(
          StatusExit.DEAD_WITH_PIDFILE,
          `${name} is not running: it ${ending(record)} ${
            ago(record.at)
          } (start to start it again, stop to clear)`,
          { name, state: "dead", lastExit },
          base,
        );
      }
      if (record !== null) return stoppedStatus(name, record, base);
      return result(
        StatusExit.NOT_RUNNING,
        `${name} is not running`,
        { name, state: "stopped" },
        base,
      );
  }
}

/** Not running, as asked (stopped, upgraded), or done with status 0. */
function stoppedStatus(
  name: string,
  record: ExitRecord,
  base: Base,
): StatusResult {
  return result(
    StatusExit.NOT_RUNNING,
    `${name} is not running (${ending(record)} ${ago(record.at)})`,
    { name, state: "stopped", lastExit: lastExitOf(record) },
    base,
  );
}

/** A supervisor's record of its daemon's last exit, as a report's `lastExit`. */
function supervisedExit(sup: SupervisorState): StatusReport["lastExit"] {
  if (sup.lastExit === null) return null;
  const code = sup.lastExit.status.match(/^status (\d+)$/)?.[1];
  return {
    how: sup.lastExit.said?.how ??
      (sup.lastExit.status.startsWith("signal") ? "killed" : "exited"),
    detail: sup.lastExit.said?.detail ?? sup.lastExit.status,
    code: code === undefined ? null : Number(code),
    at: sup.lastExit.at,
  };
}

/** `status` of a verified daemon (or supervisor) `pid`. */
function runningStatus(
  libc: Libc,
  name: string,
  path: string,
  pid: number,
  base: Base,
): StatusResult {
  const sup = readSupervisorState(libc, path, pid);
  if (sup !== null) return supervisedStatus(libc, name, path, sup, base);
  const up = libc.processAge(pid);
  const state = readState(libc, pid);
  const logsTo = state?.logsTo;
  return result(
    StatusExit.RUNNING,
    `${name} is running (pid ${pid}, up ${
      up === undefined ? "unknown" : formatDuration(up)
    }, pidfile ${path}${logsTo ? `, logs to ${logsTo}` : ""}${
      droppedText(state?.droppedRecords)
    })${upgradeText(libc, path, pid)}`,
    {
      name,
      state: "running",
      pid,
      uptime: up ?? null,
      ...(logsTo ? { logsTo } : {}),
    },
    base,
  );
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
  base: Base,
): StatusResult {
  const restarts = plural(sup.restarts, "restart");
  const last = sup.lastExit === null
    ? ""
    : `, last exit ${sup.lastExit.status}${
      sup.lastExit.said === undefined
        ? ""
        : ` (${sup.lastExit.said.how}: ${sup.lastExit.said.detail})`
    } ${ago(sup.lastExit.at)}`;
  // The supervisor's child (not yet reaped, so its pid is not reused).
  const daemon = sup.child !== null &&
      libc.processView(sup.child)?.ppid === sup.pid
    ? readState(libc, sup.child)
    : null;
  const dropped = (sup.droppedRecords ?? 0) + (daemon?.droppedRecords ?? 0);
  const where = `pidfile ${path}, logs to ${sup.logsTo}${droppedText(dropped)}`;
  const report = {
    name,
    supervisorPid: sup.pid,
    restarts: sup.restarts,
    lastExit: supervisedExit(sup),
    logsTo: sup.logsTo,
  };
  if (sup.child === null) {
    // Waiting between two runs: nothing serves now.
    const next = sup.nextRestartAt === null ? "shortly" : `in ${
      formatDuration(
        Math.max(0, Math.ceil((sup.nextRestartAt - Date.now()) / 1000)),
      )
    }`;
    return result(
      StatusExit.NOT_RUNNING,
      `${name} is not running: restarting ${next} (supervisor pid ${sup.pid}, ${restarts}${last}; ${where})`,
      { ...report, state: "restarting" },
      base,
    );
  }
  const up = libc.processAge(sup.child);
  return result(
    StatusExit.RUNNING,
    `${name} is ${
      sup.childReady ? "running" : "starting"
    } (pid ${sup.child}, up ${
      up === undefined ? "unknown" : formatDuration(up)
    }; supervised by pid ${sup.pid}, ${restarts}${last}; ${where})${
      sup.upgrade?.outcome === "starting" && sup.upgrade.next !== null
        ? `; upgrading: pid ${sup.upgrade.pid} → pid ${sup.upgrade.next}`
        : ""
    }`,
    {
      ...report,
      state: sup.childReady ? "running" : "starting",
      pid: sup.child,
      uptime: up ?? null,
    },
    base,
  );
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
