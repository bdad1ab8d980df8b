/**
 * Locked pidfiles: taken with `flock(2)` for the daemon's whole life, never
 * through a symlink, and trusted by readers only while the lock is held.
 *
 * @module
 */
import { type Libc, SysError } from "../ffi/mod.ts";
import { DaemonError, Exit } from "./errors.ts";

const decoder = new TextDecoder();
const encoder = new TextEncoder();

/** What a pidfile says about its daemon, judged by its lock. */
export type PidfileState =
  /** No pidfile. */
  | { state: "absent" }
  /** The lock is held and the file names this pid. */
  | { state: "running"; pid: number }
  /** The lock is held but no pid is written yet: a daemon is starting. */
  | { state: "starting" }
  /** The file exists but nobody holds its lock: its daemon is gone. */
  | { state: "stale"; pid: number | undefined };

/** Thrown by {@linkcode Pidfile.acquire} when another process holds the lock. */
export class PidfileLockedError extends Error {
  /** The pidfile path. */
  readonly path: string;
  /** @param path The pidfile path. */
  constructor(path: string) {
    super(`Pidfile ${JSON.stringify(path)} is locked by another process`);
    this.name = "PidfileLockedError";
    this.path = path;
  }
}

/** An error for a failed pidfile operation, worded for the user. */
function pidfileError(path: string, verb: string, err: unknown): Error {
  if (!(err instanceof SysError)) return err as Error;
  const q = JSON.stringify(path);
  switch (err.code) {
    case "ELOOP":
      return new DaemonError(
        `Refusing pidfile ${q}: it is a symbolic link`,
        Exit.FAILURE,
        { cause: err },
      );
    case "ENOENT":
      return new DaemonError(
        `Cannot ${verb} pidfile ${q}: its directory does not exist`,
        Exit.FAILURE,
        { cause: err },
      );
    case "EACCES":
    case "EPERM":
      return new DaemonError(
        `Cannot ${verb} pidfile ${q}: permission denied`,
        Exit.PRIVILEGE,
        { cause: err },
      );
    default:
      return new DaemonError(
        `Cannot ${verb} pidfile ${q}: ${err.reason.toLowerCase()}`,
        Exit.FAILURE,
        { cause: err },
      );
  }
}

/**
 * Refuse a pidfile whose directory others may write without the sticky bit:
 * anyone could replace the file, and make root signal a process of their
 * choosing.
 */
function checkDirectory(path: string): void {
  const dir = path.slice(0, path.lastIndexOf("/")) || "/";
  let mode: number | null = null;
  try {
    mode = Deno.statSync(dir).mode;
  } catch {
    return; // a missing directory is reported by open, worded for the user
  }
  if (mode !== null && (mode & 0o002) !== 0 && (mode & 0o1000) === 0) {
    throw new DaemonError(
      `Refusing pidfile ${JSON.stringify(path)}: its directory ${
        JSON.stringify(dir)
      } is writable by others and not sticky`,
    );
  }
}

/** Parse pidfile content: one decimal pid, optionally followed by a newline. */
export function parsePid(text: string): number | undefined {
  if (!/^[0-9]{1,10}\n?$/.test(text)) return undefined;
  const pid = Number(text.trim());
  return pid > 1 && pid <= 4194304 ? pid : undefined;
}

/**
 * A pidfile this process holds locked.
 *
 * @example Taking and releasing a pidfile
 * ```ts
 * import { libc } from "../ffi/mod.ts";
 * import { Pidfile } from "./pidfile.ts";
 * const path = await Deno.makeTempFile({ suffix: ".pid" });
 * const pidfile = Pidfile.acquire(libc(), path);
 * pidfile.write(Deno.pid);
 * console.log(Deno.readTextFileSync(path) === `${Deno.pid}\n`); // true
 * pidfile.remove();
 * ```
 */
export class Pidfile {
  /** The absolute path. */
  readonly path: string;
  /** The locked descriptor. */
  readonly fd: number;
  #libc: Libc;
  #closed = false;

  private constructor(libc: Libc, path: string, fd: number) {
    this.#libc = libc;
    this.path = path;
    this.fd = fd;
  }

  /**
   * Open (creating it if needed) and lock a pidfile, mode 0644, never
   * through a symlink. Retries when it raced with a daemon removing the file.
   *
   * @param libc The OS interface.
   * @param path Absolute path.
   * @returns The locked pidfile; its content is left as it was.
   * @throws {PidfileLockedError} When another process holds the lock.
   * @throws {DaemonError} When it cannot be opened, with a worded reason.
   */
  static acquire(libc: Libc, path: string): Pidfile {
    checkDirectory(path);
    for (let attempt = 0;; attempt++) {
      let fd: number;
      try {
        fd = libc.open(path, { write: true, create: true }, 0o644);
      } catch (err) {
        throw pidfileError(path, "open", err);
      }
      try {
        if (libc.stat(fd).type !== "file") {
          throw new DaemonError(
            `Refusing pidfile ${
              JSON.stringify(path)
            }: it is not a regular file`,
          );
        }
        if (!libc.tryLock(fd, true)) throw new PidfileLockedError(path);
        // A daemon that exits unlinks its pidfile while still holding the
        // lock; if that happened between our open and flock, the inode we
        // locked is no longer at `path`: start over.
        if (Pidfile.#sameFile(libc, path, fd)) {
          libc.fchmod(fd, 0o644);
          return new Pidfile(libc, path, fd);
        }
        if (attempt >= 100) {
          throw new DaemonError(
            `Cannot lock pidfile ${
              JSON.stringify(path)
            }: it keeps being replaced`,
          );
        }
      } catch (err) {
        libc.close(fd);
        throw err;
      }
      libc.close(fd);
    }
  }

  /**
   * Take over a pidfile descriptor that a parent process locked and passed on.
   *
   * @param libc The OS interface.
   * @param path Its path.
   * @param fd The inherited descriptor; it is marked close-on-exec.
   */
  static adopt(libc: Libc, path: string, fd: number): Pidfile {
    libc.setCloexec(fd, true);
    return new Pidfile(libc, path, fd);
  }

  static #sameFile(libc: Libc, path: string, fd: number): boolean {
    try {
      const a = libc.stat(fd);
      const b = libc.stat(path);
      return a.dev === b.dev && a.ino === b.ino;
    } catch (err) {
      if (err instanceof SysError && err.code === "ENOENT") return false;
      throw err;
    }
  }

  /** Whether `path` still names the file this object holds locked. */
  isCurrent(): boolean {
    return !this.#closed && Pidfile.#sameFile(this.#libc, this.path, this.fd);
  }

  /** Write `pid` and a newline, replacing the content, while locked. */
  write(pid: number): void {
    this.#libc.replace(this.fd, encoder.encode(`${pid}\n`));
  }

  /** The pid in the file, or `undefined` while none is written. */
  read(): number | undefined {
    return parsePid(decoder.decode(this.#libc.readAll(this.fd)));
  }

  /**
   * Unlink the file if it is still ours, then release the lock. The unlink
   * happens while the lock is held, so no other process can take a file that
   * is about to vanish. Safe to call twice.
   *
   * @returns `false` when the file could not be unlinked (e.g. no permission).
   */
  remove(): boolean {
    if (this.#closed) return true;
    let removed = true;
    try {
      if (Pidfile.#sameFile(this.#libc, this.path, this.fd)) {
        this.#libc.unlink(this.path);
      }
    } catch {
      removed = false;
    }
    this.close();
    return removed;
  }

  /** Release the lock without removing the file. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#libc.close(this.fd);
  }
}

/**
 * Judge a pidfile by its lock, without disturbing a daemon that holds it.
 *
 * A pid is believed only while the lock is held, so a stale file naming an
 * unrelated live process is reported `stale`, never `running`.
 *
 * @param libc The OS interface.
 * @param path Absolute pidfile path.
 * @returns The state.
 * @throws {DaemonError} When the file cannot be read (exit code 4 for permission).
 */
export function inspectPidfile(libc: Libc, path: string): PidfileState {
  checkDirectory(path);
  let fd: number;
  try {
    fd = libc.open(path, {});
  } catch (err) {
    if (err instanceof SysError && err.code === "ENOENT") {
      return { state: "absent" };
    }
    throw pidfileError(path, "read", err);
  }
  try {
    if (libc.stat(fd).type !== "file") {
      throw new DaemonError(
        `Cannot read pidfile ${JSON.stringify(path)}: it is not a regular file`,
      );
    }
    const pid = parsePid(decoder.decode(libc.readAll(fd)));
    // A shared lock succeeds only when no daemon holds its exclusive one.
    if (libc.tryLock(fd, false)) return { state: "stale", pid };
    // Re-read under the held lock: the daemon may have just written its pid.
    const now = parsePid(decoder.decode(libc.readAll(fd))) ?? pid;
    return now === undefined
      ? { state: "starting" }
      : { state: "running", pid: now };
  } finally {
    libc.close(fd);
  }
}
