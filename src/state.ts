/**
 * The state file beside the pidfile, where a running daemon publishes the
 * outcome of each reload so the `reload` command can report it.
 *
 * @module
 */
import type { Libc } from "../ffi/mod.ts";

/** What the daemon publishes. */
export interface DaemonState {
  /** The daemon's pid, to match against the pidfile. */
  pid: number;
  /** Reloads asked for (SIGHUPs seen), counting from 0. */
  reloadsRequested: number;
  /** The request number the last finished reload covered. */
  reloadsDone: number;
  /** The error text of the last finished reload, or `null` when it succeeded. */
  lastReloadError: string | null;
  /** Where the daemon logs, for `status`. */
  logsTo?: string;
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** The state file path for a pidfile: `x.pid` → `x.state`. */
export function statePath(pidfile: string): string {
  return `${pidfile.replace(/\.pid$/, "")}.state`;
}

/** A state file the daemon holds open and rewrites in place. */
export class StateFile {
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

  /** Create (or take over) the state file for `pidfile`; the caller holds the pidfile lock. */
  static create(libc: Libc, pidfile: string, state: DaemonState): StateFile {
    const path = statePath(pidfile);
    const fd = libc.open(path, { write: true, create: true }, 0o644);
    libc.fchmod(fd, 0o644);
    const file = new StateFile(libc, path, fd);
    file.write(state);
    return file;
  }

  /** Replace the content with `state`. */
  write(state: DaemonState): void {
    this.#libc.replace(this.#fd, encoder.encode(JSON.stringify(state) + "\n"));
  }

  /** Unlink and close. Safe to call twice. */
  remove(): void {
    if (this.#closed) return;
    this.#closed = true;
    try {
      this.#libc.unlink(this.path);
    } catch {
      // Already gone, or no longer ours to remove.
    }
    this.#libc.close(this.#fd);
  }
}

/**
 * Read a daemon's state file.
 *
 * @returns The state, or `null` when missing or not (yet) readable as a whole.
 */
export function readState(libc: Libc, pidfile: string): DaemonState | null {
  let fd: number;
  try {
    fd = libc.open(statePath(pidfile), {});
  } catch {
    return null;
  }
  try {
    const data = JSON.parse(decoder.decode(libc.readAll(fd)));
    return typeof data?.pid === "number" &&
        typeof data.reloadsRequested === "number" &&
        typeof data.reloadsDone === "number"
      ? data as DaemonState
      : null;
  } catch {
    // Caught mid-rewrite: the caller reads again.
    return null;
  } finally {
    libc.close(fd);
  }
}
