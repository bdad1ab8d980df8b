/**
 * Locked pidfiles: taken with `flock(2)` for the daemon's whole life, never
 * through a symlink, and trusted by readers only while the lock is held.
 *
 * @module
 */
import { type FileStat, type Libc, SysError } from "../ffi/mod.ts";
import { DaemonError, Exit } from "./errors.ts";
import {
  closeParent,
  openChecked,
  openInParent,
  openParent,
  trustedOwners,
  type WalkPolicy,
} from "./safe_open.ts";

const decoder = new TextDecoder();
const encoder = new TextEncoder();

/** What a pidfile says about its daemon, judged by its lock. */
export type PidfileState =
  /** No pidfile. */
  | { state: "absent" }
  /** The lock is held and the file names this pid. */
  | { state: "running"; pid: number; file: FileStat }
  /** The lock is held but no pid is written yet: a daemon is starting. */
  | { state: "starting"; file: FileStat }
  /** The file exists but nobody holds its lock: its daemon is gone. */
  | { state: "stale"; pid: number | undefined; file: FileStat };

/** Thrown by {@linkcode Pidfile.acquire} when another process holds the lock. */
export class PidfileLockedError extends Error {
  /** The pidfile path. */
  readonly path: string;
  /**
   * The error for a pidfile whose lock another process holds.
   *
   * @param path The pidfile path.
   */
  constructor(path: string) {
    super(`Pidfile ${JSON.stringify(path)} is locked by another process`);
    this.name = "PidfileLockedError";
    this.path = path;
  }
}

/** What the pidfile's walk enforces for a command run by `euid`. */
export function pidfilePolicy(euid: number): WalkPolicy {
  return { what: "pidfile", owners: trustedOwners(euid), trustDirs: true };
}

/** A pidfile larger than this is not one. */
const PIDFILE_MAX = 4096;

/** Parse pidfile content: one decimal pid, optionally followed by a newline. */
export function parsePid(text: string): number | undefined {
  if (!/^[0-9]{1,10}\n?$/.test(text)) return undefined;
  const pid = Number(text.trim());
  return pid > 1 && pid <= 4194304 ? pid : undefined;
}

/**
 * A pidfile this process holds locked.
 *
 * The lock is taken on a read-only descriptor: that one is what the daemon
 * keeps for its whole life, so a daemon that dropped privileges holds no
 * descriptor through which it could write another pid into the file. The
 * pid is written by root through a second descriptor, closed before anything
 * of the payload runs unprivileged.
 *
 * @example Taking and releasing a pidfile
 * ```ts
 * import { libc } from "../ffi/mod.ts";
 * import { Pidfile } from "./pidfile.ts";
 * const path = await Deno.makeTempFile({ suffix: ".pid" });
 * const pidfile = Pidfile.acquire(libc(), path);
 * pidfile.write(Deno.pid);
 * pidfile.closeWriter();
 * console.log(Deno.readTextFileSync(path) === `${Deno.pid}\n`); // true
 * pidfile.remove();
 * ```
 */
export class Pidfile {
  /** The absolute path. */
  readonly path: string;
  /** The locked, read-only descriptor. */
  readonly fd: number;
  /** The descriptor the pid is written through, until {@linkcode Pidfile.closeWriter}. */
  #writer: number | null;
  #libc: Libc;
  #closed = false;

  private constructor(
    libc: Libc,
    path: string,
    fd: number,
    writer: number | null,
  ) {
    this.#libc = libc;
    this.path = path;
    this.fd = fd;
    this.#writer = writer;
  }

  /** The descriptor the pid is written through, or `null` once closed. */
  get writer(): number | null {
    return this.#writer;
  }

  /**
   * Open (creating it if needed) and lock a pidfile, mode 0644, where only
   * root or the caller can change what its path names (see `safe_open.ts`).
   * Retries when it raced with a daemon removing the file.
   *
   * @param libc The OS interface.
   * @param path Absolute path.
   * @returns The locked pidfile; its content is left as it was.
   * @throws {PidfileLockedError} When another process holds the lock.
   * @throws {DaemonError} When it cannot be used, with a worded reason.
   */
  static acquire(libc: Libc, path: string): Pidfile {
    const policy = pidfilePolicy(libc.geteuid());
    const parent = openParent(libc, path, policy);
    try {
      for (let attempt = 0;; attempt++) {
        const rules = { privateWrite: true };
        const { fd: writer } = openInParent(libc, parent, path, policy, {
          write: true,
          create: true,
          mode: 0o644,
        }, rules);
        let fd = -1;
        try {
          fd = openInParent(libc, parent, path, policy, {}, rules).fd;
          if (!libc.tryLock(fd, true)) throw new PidfileLockedError(path);
          // A daemon that exits unlinks its pidfile while still holding the
          // lock; if that happened between our open and flock, the inode we
          // locked is no longer at `path`: start over.
          if (sameFile(libc, path, fd) && sameFile(libc, path, writer)) {
            return new Pidfile(libc, path, fd, writer);
          }
          if (attempt >= 100) {
            throw new DaemonError(
              `Cannot lock pidfile ${
                JSON.stringify(path)
              }: it keeps being replaced`,
            );
          }
        } catch (err) {
          if (fd >= 0) libc.close(fd);
          libc.close(writer);
          throw err;
        }
        libc.close(fd);
        libc.close(writer);
      }
    } finally {
      closeParent(libc, parent);
    }
  }

  /**
   * Take over pidfile descriptors that a parent process locked and passed on.
   *
   * @param libc The OS interface.
   * @param path Its path.
   * @param fd The inherited locked descriptor; it is marked close-on-exec.
   * @param writer The inherited descriptor to write the pid through, if any.
   */
  static adopt(
    libc: Libc,
    path: string,
    fd: number,
    writer: number | null = null,
  ): Pidfile {
    libc.setCloexec(fd, true);
    if (writer !== null) libc.setCloexec(writer, true);
    return new Pidfile(libc, path, fd, writer);
  }

  /** Whether `path` still names the file this object holds locked. */
  isCurrent(): boolean {
    return !this.#closed && sameFile(this.#libc, this.path, this.fd);
  }

  /** Write `pid` and a newline, replacing the content, while locked. */
  write(pid: number): void {
    if (this.#writer === null) {
      throw new Error("The pidfile's writing descriptor is closed");
    }
    this.#libc.replace(this.#writer, encoder.encode(`${pid}\n`));
  }

  /** Close the writing descriptor: from now on only the lock is held. */
  closeWriter(): void {
    if (this.#writer === null) return;
    this.#libc.close(this.#writer);
    this.#writer = null;
  }

  /** The pid in the file, or `undefined` while none is written. */
  read(): number | undefined {
    const bytes = this.#libc.readBounded(this.fd, PIDFILE_MAX);
    return bytes === null ? undefined : parsePid(decoder.decode(bytes));
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
      if (sameFile(this.#libc, this.path, this.fd)) {
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
    this.closeWriter();
    this.#libc.close(this.fd);
  }
}

/** Whether `path` names the file open on `fd`. */
function sameFile(libc: Libc, path: string, fd: number): boolean {
  try {
    const a = libc.stat(fd);
    const b = libc.stat(path);
    return a.dev === b.dev && a.ino === b.ino;
  } catch (err) {
    if (err instanceof SysError && err.code === "ENOENT") return false;
    throw err;
  }
}

/**
 * Judge a pidfile by its lock, without disturbing a daemon that holds it.
 *
 * A pid is believed only while the lock is held, so a stale file naming an
 * unrelated live process is reported `stale`, never `running`; whether the
 * process it names is the one holding the lock is for the caller to check
 * (`control.ts`). The file is opened only where nobody but root or the
 * caller can change what its path names.
 *
 * @param libc The OS interface.
 * @param path Absolute pidfile path.
 * @returns The state.
 * @throws {DaemonError} When the file cannot be trusted or read (exit code 4
 * for permission).
 */
export function inspectPidfile(libc: Libc, path: string): PidfileState {
  let fd: number;
  let file: FileStat;
  try {
    ({ fd, stat: file } = openChecked(
      libc,
      path,
      pidfilePolicy(libc.geteuid()),
      {},
      { privateWrite: true },
    ));
  } catch (err) {
    // No directory, or no file: no daemon.
    const sys = (err as Error).cause;
    if (sys instanceof SysError && sys.code === "ENOENT") {
      return { state: "absent" };
    }
    throw err;
  }
  try {
    const read = () => {
      const bytes = libc.readBounded(fd, PIDFILE_MAX);
      if (bytes === null) {
        throw new DaemonError(
          `Refusing pidfile ${
            JSON.stringify(path)
          }: it holds more than ${PIDFILE_MAX} bytes, not a pid`,
          Exit.USAGE,
        );
      }
      return parsePid(decoder.decode(bytes));
    };
    const pid = read();
    // A shared lock succeeds only when no daemon holds its exclusive one.
    if (libc.tryLock(fd, false)) return { state: "stale", pid, file };
    // Re-read under the held lock: the daemon may have just written its pid.
    const now = read() ?? pid;
    return now === undefined
      ? { state: "starting", file }
      : { state: "running", pid: now, file };
  } finally {
    libc.close(fd);
  }
}
