/**
 * Opening the files a privileged command handles for a daemon (pidfile, its
 * side files, the log file) so that nobody it does not trust can steer it:
 * the path is walked from `/` one component at a time without following a
 * symbolic link, every open is non-blocking (a FIFO or device never hangs a
 * command), and a file is used only after `fstat` says what it is.
 *
 * Who is trusted: root, and the user running the command. A pidfile is
 * believed only where nobody else can change what its path names.
 *
 * @module
 */
import { type FileStat, type Libc, SysError } from "../ffi/mod.ts";
import { DaemonError, Exit } from "./errors.ts";

/** What the walk enforces on the directories above a file. */
export interface WalkPolicy {
  /** The file's role in messages: `"pidfile"`, `"log file"`. */
  what: string;
  /**
   * Uids that may own the directories (when `trustDirs`) and the file: root,
   * and a non-root caller itself.
   */
  owners: readonly number[];
  /**
   * Require that nobody outside `owners` can change what the path names:
   * every directory owned by one of `owners` and writable by nobody else,
   * or sticky and then the next component owned by one of `owners`.
   */
  trustDirs: boolean;
}

/** The directory a file lives in, held open (`O_PATH`), and the file's name. */
export interface Parent {
  /** A handle on the directory; close it with {@linkcode closeParent}. */
  dir: number;
  /** The file's name in it. */
  name: string;
}

const q = JSON.stringify;
/** Linux limits: a whole path, and one component. */
const PATH_MAX = 4096;
const NAME_MAX = 255;

/** The uids a command run by `euid` trusts: root, and the caller. */
export function trustedOwners(euid: number): readonly number[] {
  return euid === 0 ? [0] : [0, euid];
}

/** Who may write a directory besides its owner, in words, or `null`. */
function otherWriters(st: FileStat): string | null {
  if ((st.mode & 0o002) !== 0) return "every user";
  if ((st.mode & 0o020) !== 0) return `group ${st.gid}`;
  return null;
}

function refuse(policy: WalkPolicy, path: string, why: string): DaemonError {
  return new DaemonError(
    `Refusing ${policy.what} ${q(path)}: ${why}`,
    Exit.USAGE,
  );
}

/** Turn a failed system call during the walk into a worded error. */
function walkError(
  policy: WalkPolicy,
  path: string,
  at: string,
  err: unknown,
): Error {
  if (!(err instanceof SysError)) return err as Error;
  switch (err.code) {
    case "ENOENT":
      return new DaemonError(
        `Cannot open ${policy.what} ${q(path)}: directory ${
          q(at)
        } does not exist`,
        Exit.FAILURE,
        { cause: err },
      );
    case "EACCES":
    case "EPERM":
      return new DaemonError(
        `Cannot open ${policy.what} ${q(path)}: permission denied at ${q(at)}`,
        Exit.PRIVILEGE,
        { cause: err },
      );
    case "ENOTDIR":
      return refuse(policy, path, `${q(at)} is not a directory`);
    default:
      return new DaemonError(
        `Cannot open ${policy.what} ${q(path)}: ${err.reason.toLowerCase()}`,
        Exit.FAILURE,
        { cause: err },
      );
  }
}

/**
 * Walk to the directory holding `path`, component by component from `/`,
 * never following a symbolic link, and check who could change each step.
 *
 * @param libc The OS interface.
 * @param path An absolute path.
 * @param policy What to enforce.
 * @returns The directory, held open, and the file's name.
 * @throws {DaemonError} Exit 2 when refused, 4 for a permission problem.
 */
export function openParent(
  libc: Libc,
  path: string,
  policy: WalkPolicy,
): Parent {
  const parts = path.split("/").filter((p) => p !== "");
  if (!path.startsWith("/") || parts.length === 0) {
    throw refuse(policy, path, "it is not an absolute path to a file");
  }
  if (
    new TextEncoder().encode(path).length >= PATH_MAX ||
    parts.some((p) => new TextEncoder().encode(p).length > NAME_MAX)
  ) {
    throw refuse(policy, path, "the path is too long");
  }
  const name = parts.pop()!;
  if (name === "." || name === "..") {
    throw refuse(policy, path, "it names a directory");
  }
  let at = "/";
  let dir: number;
  try {
    dir = libc.openAt(null, "/", { path: true });
  } catch (err) {
    throw walkError(policy, path, at, err);
  }
  try {
    let st = libc.stat(dir);
    checkStep(policy, path, at, st, null);
    for (const part of parts) {
      const next = at === "/" ? `/${part}` : `${at}/${part}`;
      let fd: number;
      try {
        fd = libc.openAt(dir, part, { path: true });
      } catch (err) {
        throw walkError(policy, path, next, err);
      }
      libc.close(dir);
      dir = fd;
      const parent = st;
      st = libc.stat(dir);
      if (st.type === "symlink") {
        throw refuse(policy, path, `${q(next)} is a symbolic link`);
      }
      if (st.type !== "directory") {
        throw refuse(policy, path, `${q(next)} is not a directory`);
      }
      checkStep(policy, path, next, st, parent);
      at = next;
    }
    return { dir, name };
  } catch (err) {
    libc.close(dir);
    throw err;
  }
}

/** Release the directory handle of {@linkcode openParent}. */
export function closeParent(libc: Libc, parent: Parent): void {
  libc.close(parent.dir);
}

/**
 * One step of the walk: `st` is the directory at `at`, `parent` the one
 * above it (whose sticky bit lets others add names, but not replace ours).
 */
function checkStep(
  policy: WalkPolicy,
  path: string,
  at: string,
  st: FileStat,
  parent: FileStat | null,
): void {
  if (!policy.trustDirs) return;
  const stickyParent = parent !== null && otherWriters(parent) !== null &&
    (parent.mode & 0o1000) !== 0;
  if (!policy.owners.includes(st.uid)) {
    throw refuse(
      policy,
      path,
      `directory ${q(at)} belongs to uid ${st.uid}, who could replace it${
        stickyParent ? "" : " or what it holds"
      }; use a directory only ${who(policy)} can write`,
    );
  }
  const writers = otherWriters(st);
  if (writers !== null && (st.mode & 0o1000) === 0) {
    throw refuse(
      policy,
      path,
      `directory ${
        q(at)
      } is writable by ${writers}, who could replace the file; use a directory only ${
        who(policy)
      } can write`,
    );
  }
}

function who(policy: WalkPolicy): string {
  return policy.owners.length === 1 ? "root" : "you (or root)";
}

/** What a file found at the end of the walk must be. */
export interface FileRules {
  /** A character device with this `"major:minor"` is accepted as it is (`"1:3"`: /dev/null). */
  device?: string;
  /** Refuse a file that group or others may write. */
  privateWrite?: boolean;
}

/**
 * Check what an opened descriptor is: a regular file with one link, owned by
 * one of `owners` (or the device `rules.device`).
 *
 * @returns `"file"`, or `"device"` for the accepted device.
 * @throws {DaemonError} Exit 2, naming the path and what it is.
 */
export function checkFile(
  st: FileStat,
  path: string,
  policy: Pick<WalkPolicy, "what" | "owners">,
  rules: FileRules = {},
): "file" | "device" {
  const no = (why: string) =>
    new DaemonError(`Refusing ${policy.what} ${q(path)}: ${why}`, Exit.USAGE);
  if (st.type === "char-device" && st.rdev === rules.device) return "device";
  if (st.type !== "file") {
    throw no(`it is a ${st.type.replace("-", " ")}, not a regular file`);
  }
  if (st.nlink !== 1) {
    throw no(`it has ${st.nlink} hard links (it could be another file's)`);
  }
  if (!policy.owners.includes(st.uid)) {
    throw no(`it belongs to uid ${st.uid}`);
  }
  if (rules.privateWrite && (st.mode & 0o022) !== 0) {
    throw no("it is writable by others");
  }
  return "file";
}

/** A file opened by {@linkcode openChecked}. */
export interface OpenedFile {
  fd: number;
  stat: FileStat;
  /** Whether this open created it. */
  created: boolean;
  /** `"device"` for the accepted character device. */
  kind: "file" | "device";
}

/**
 * Walk to `path` and open it without following a symlink and without
 * blocking, then check what it is.
 *
 * @param libc The OS interface.
 * @param path Absolute path.
 * @param policy Walk policy; its `owners` also bound who may own the file.
 * @param open `write`/`append`/`create` as for `openAt`; `mode` for a new file.
 * @param rules What the file must be.
 * @returns The descriptor (close-on-exec), its stat, and whether it was created.
 * @throws {DaemonError} Worded; exit 2 for a refusal, 4 for permissions.
 */
export function openChecked(
  libc: Libc,
  path: string,
  policy: WalkPolicy,
  open: { write?: boolean; append?: boolean; create?: boolean; mode?: number },
  rules: FileRules = {},
): OpenedFile {
  const parent = openParent(libc, path, policy);
  try {
    return openInParent(libc, parent, path, policy, open, rules);
  } finally {
    closeParent(libc, parent);
  }
}

/** {@linkcode openChecked} for a name in a directory already walked to. */
export function openInParent(
  libc: Libc,
  parent: Parent,
  path: string,
  policy: Pick<WalkPolicy, "what" | "owners">,
  open: { write?: boolean; append?: boolean; create?: boolean; mode?: number },
  rules: FileRules = {},
): OpenedFile {
  const flags = { write: open.write, append: open.append };
  let fd: number;
  let created = false;
  try {
    if (open.create) {
      try {
        fd = libc.openAt(
          parent.dir,
          parent.name,
          { ...flags, create: true, exclusive: true },
          open.mode,
        );
        created = true;
      } catch (err) {
        if (!(err instanceof SysError && err.code === "EEXIST")) throw err;
        fd = libc.openAt(parent.dir, parent.name, flags);
      }
    } else {
      fd = libc.openAt(parent.dir, parent.name, flags);
    }
  } catch (err) {
    throw openError(policy, path, err);
  }
  try {
    const stat = libc.stat(fd);
    const kind = checkFile(stat, path, policy, rules);
    // A new file gets exactly its mode, whatever the umask.
    if (created && open.mode !== undefined) libc.fchmod(fd, open.mode);
    return { fd, stat, created, kind };
  } catch (err) {
    libc.close(fd);
    throw err;
  }
}

/** A failed open of the file itself, worded. */
function openError(
  policy: Pick<WalkPolicy, "what">,
  path: string,
  err: unknown,
): Error {
  if (!(err instanceof SysError)) return err as Error;
  const why = err.code === "ELOOP"
    ? "it is a symbolic link"
    : err.code === "ENXIO"
    ? "it is a FIFO or socket with no other end"
    : err.code === "EISDIR"
    ? "it is a directory"
    : null;
  if (why !== null) {
    return new DaemonError(
      `Refusing ${policy.what} ${q(path)}: ${why}`,
      Exit.USAGE,
      { cause: err },
    );
  }
  const denied = err.code === "EACCES" || err.code === "EPERM";
  // What open(2) with O_NONBLOCK says of a file another process leased.
  const leased = err.code === "EAGAIN";
  return new DaemonError(
    `Cannot open ${policy.what} ${q(path)}: ${
      denied
        ? "permission denied"
        : leased
        ? "another process holds a lease on it"
        : err.reason.toLowerCase()
    }`,
    denied ? Exit.PRIVILEGE : Exit.FAILURE,
    { cause: err },
  );
}

/**
 * `err`, a refusal of the file at `path`, with the way out when the file is
 * a plain one of a user not in `owners`: most often the daemon's user owns
 * it since a `start --user`. The owner is looked up again for the hint
 * alone; any other refusal is returned as it is.
 */
export function withUserHint(
  libc: Libc,
  path: string,
  owners: readonly number[],
  err: unknown,
): unknown {
  if (!(err instanceof DaemonError) || err.exitCode !== Exit.USAGE) return err;
  try {
    const st = libc.stat(path);
    if (st.type !== "file" || st.nlink !== 1 || owners.includes(st.uid)) {
      return err;
    }
  } catch {
    return err;
  }
  return new DaemonError(
    `${err.message}; give --user when the daemon runs as that user`,
    err.exitCode,
    { cause: err },
  );
}
