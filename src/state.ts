/**
 * The files beside the pidfile where running processes publish what the
 * control commands report: `x.state`, written by the daemon (reload
 * outcomes, where it logs), and `x.supervisor`, written by the supervisor of
 * `start --restart` (the child, its restarts, why it gave up).
 *
 * @module
 */
import type { Libc } from "../ffi/mod.ts";

/** What the daemon publishes. */
export interface DaemonState {
  /** The daemon's pid, to match against the pidfile. */
  pid: number;
  /** The supervisor's pid, when the daemon runs under one (`start --restart`). */
  supervisor?: number;
  /** Reloads asked for (SIGHUPs seen), counting from 0. */
  reloadsRequested: number;
  /** The request number the last finished reload covered. */
  reloadsDone: number;
  /** The error text of the last finished reload, or `null` when it succeeded. */
  lastReloadError: string | null;
  /** Where the daemon logs, for `status`. */
  logsTo?: string;
  /** Log records it could not write (a deaf syslog, a full disk), once there are any. */
  droppedRecords?: number;
}

/** What the supervisor publishes. */
export interface SupervisorState {
  /** The supervisor's pid, to match against the pidfile. */
  pid: number;
  /** The running daemon's pid, or `null` between two runs. */
  child: number | null;
  /** Whether that daemon has said it is ready. */
  childReady: boolean;
  /** Restarts since `start`. */
  restarts: number;
  /** How the last daemon ended (`"status 1"`, `"signal SIGSEGV"`) and when (ms since the epoch). */
  lastExit: { status: string; at: number } | null;
  /** When the next restart is due (ms since the epoch), while waiting for it. */
  nextRestartAt: number | null;
  /** Why the supervisor gave up, once it has. */
  gaveUp: string | null;
  /** The daemon's stop timeout in seconds: `stop` waits longer than that for the supervisor. */
  stopTimeout: number;
  /** Where the supervisor and the daemon log, for `status`. */
  logsTo: string;
  /** The supervisor's own log records it could not write, once there are any. */
  droppedRecords?: number;
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** The base of the side files: the pidfile path without `.pid`. */
function base(pidfile: string): string {
  return pidfile.replace(/\.pid$/, "");
}

/** The daemon's state file for a pidfile: `x.pid` → `x.state`. */
export function statePath(pidfile: string): string {
  return `${base(pidfile)}.state`;
}

/** The supervisor's state file for a pidfile: `x.pid` → `x.supervisor`. */
export function supervisorPath(pidfile: string): string {
  return `${base(pidfile)}.supervisor`;
}

/**
 * Remove the side files of a pidfile whose processes are gone. Only the
 * holder of the pidfile's lock may call this.
 */
export function removeSideFiles(libc: Libc, pidfile: string): void {
  for (const path of [statePath(pidfile), supervisorPath(pidfile)]) {
    try {
      libc.unlink(path);
    } catch {
      // not there
    }
  }
}

/** A JSON state file a process holds open and rewrites in place. */
export class StateFile<T> {
  /** The path. */
  readonly path: string;
  #libc: Libc;
  #fd: number;
  #closed = false;

  private constructor(libc: Libc, path: string, fd: number) {
    this.#libc = libc;
    this.path = path;
    this.#fd = fd;
  }

  /**
   * Create (or take over) a state file, mode 0644; the caller holds the
   * pidfile lock, or is the daemon of the supervisor that holds it.
   */
  static create<T>(libc: Libc, path: string, state: T): StateFile<T> {
    const fd = libc.open(path, { write: true, create: true }, 0o644);
    libc.fchmod(fd, 0o644);
    const file = new StateFile<T>(libc, path, fd);
    file.write(state);
    return file;
  }

  /** Replace the content with `state`. */
  write(state: T): void {
    this.#libc.replace(this.#fd, encoder.encode(JSON.stringify(state) + "\n"));
  }

  /** Close, keeping the file for the control commands to read. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#libc.close(this.#fd);
  }

  /** Unlink and close. Safe to call twice. */
  remove(): void {
    if (this.#closed) return;
    try {
      this.#libc.unlink(this.path);
    } catch {
      // Already gone, or no longer ours to remove.
    }
    this.close();
  }
}

/**
 * Read and parse a JSON file, or `null` when missing or still not whole
 * after a few reads (each rewrite is a write then a truncate).
 */
function readJson(libc: Libc, path: string): unknown {
  let fd: number;
  try {
    fd = libc.open(path, {});
  } catch {
    return null;
  }
  try {
    for (let attempt = 0; attempt < 5; attempt++) {
      try {
        return JSON.parse(decoder.decode(libc.readAll(fd)));
      } catch {
        // Caught mid-rewrite: read again.
      }
    }
    return null;
  } finally {
    libc.close(fd);
  }
}

/**
 * Read a daemon's state file.
 *
 * @returns The state, or `null` when missing or not (yet) readable as a whole.
 */
export function readState(libc: Libc, pidfile: string): DaemonState | null {
  const data = readJson(libc, statePath(pidfile)) as DaemonState | null;
  return typeof data?.pid === "number" &&
      typeof data.reloadsRequested === "number" &&
      typeof data.reloadsDone === "number"
    ? data
    : null;
}

/**
 * Read the supervisor's state file, when it belongs to process `pid`.
 *
 * @returns The state, or `null` when missing, unreadable or another process's.
 */
export function readSupervisorState(
  libc: Libc,
  pidfile: string,
  pid: number | undefined,
): SupervisorState | null {
  const data = readJson(libc, supervisorPath(pidfile)) as
    | SupervisorState
    | null;
  return typeof data?.pid === "number" && data.pid === pid &&
      typeof data.restarts === "number" && typeof data.stopTimeout === "number"
    ? data
    : null;
}
