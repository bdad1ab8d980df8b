/**
 * Files by name: opening, `statx`, locks, ownership and mode, and the
 * process-wide file settings (`umask`, working directory).
 *
 * @module
 */
import type { FileStat, FileType, Libc, OpenAtFlags } from "../types.ts";
import {
  type Core,
  cstr,
  ERRNO,
  O_APPEND,
  O_CLOEXEC,
  O_CREAT,
  O_EXCL,
  O_NOCTTY,
  O_NONBLOCK,
  O_PATH,
  O_RDONLY,
  O_RDWR,
  O_WRONLY,
} from "./_core.ts";

const LOCK_SH = 1;
const LOCK_EX = 2;
const LOCK_NB = 4;
const AT_FDCWD = -100;
const AT_SYMLINK_NOFOLLOW = 0x100;
const AT_EMPTY_PATH = 0x1000;
const STATX_BASIC_STATS = 0x7ff;
/** `struct statx` is 256 bytes on every architecture. */
const STATX_SIZE = 256;

const FILE_TYPES: Record<number, FileType> = {
  0o100000: "file",
  0o040000: "directory",
  0o120000: "symlink",
  0o010000: "fifo",
  0o140000: "socket",
  0o020000: "char-device",
  0o060000: "block-device",
};

/** The functions of {@linkcode Libc} that work on files. */
export type Files = Pick<
  Libc,
  | "open"
  | "reopenReadOnly"
  | "openAt"
  | "stat"
  | "tryLock"
  | "fchmod"
  | "fchown"
  | "unlink"
  | "umask"
  | "chdir"
>;

/**
 * The Linux file functions.
 *
 * @param c The shared core.
 * @returns Them, for {@linkcode Libc}.
 */
export function files(c: Core): Files {
  return {
    open: (path, flags, mode) => openPath(c, path, flags, mode),
    reopenReadOnly(fd) {
      // Following the /proc link is the point: it names the open file.
      const p = cstr(`/proc/self/fd/${fd}`);
      const f = O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK;
      return c.check("open", `fd ${fd}`, () => c.symbol("open")(p, f, 0));
    },
    openAt(dir, name, flags, mode = 0o600) {
      const p = cstr(name);
      const f = openAtFlags(c, flags);
      return c.check(
        "openat",
        name,
        () => c.symbol("openat")(dir ?? AT_FDCWD, p, f, mode),
      );
    },
    stat: (target) => statx(c, target),
    tryLock(fd, exclusive) {
      const op = (exclusive ? LOCK_EX : LOCK_SH) | LOCK_NB;
      for (;;) {
        if (c.symbol("flock")(fd, op) === 0) return true;
        const e = c.errno();
        if (e === ERRNO.EAGAIN) return false;
        if (e !== ERRNO.EINTR) throw c.sysError("flock", `fd ${fd}`, e);
      }
    },
    fchmod(fd, mode) {
      c.check("fchmod", `fd ${fd}`, () => c.symbol("fchmod")(fd, mode));
    },
    fchown(fd, uid, gid) {
      c.check("fchown", `fd ${fd}`, () => c.symbol("fchown")(fd, uid, gid));
    },
    unlink(path) {
      const p = cstr(path);
      c.check("unlink", path, () => c.symbol("unlink")(p));
    },
    umask: (mask) => c.symbol("umask")(mask),
    chdir(path) {
      const p = cstr(path);
      c.check("chdir", path, () => c.symbol("chdir")(p));
    },
  };
}

/**
 * `open(2)` with `O_CLOEXEC | O_NOFOLLOW | O_NOCTTY`.
 *
 * @param c The shared core.
 * @param path The file.
 * @param flags How to open it.
 * @param mode The mode of a created file.
 * @returns The descriptor.
 * @throws {SysError} When the open fails.
 */
export function openPath(
  c: Core,
  path: string,
  flags: { write?: boolean; create?: boolean; append?: boolean },
  mode = 0o644,
): number {
  const p = cstr(path);
  const f = O_CLOEXEC | c.O_NOFOLLOW | O_NOCTTY |
    (flags.write ? (flags.append ? O_WRONLY | O_APPEND : O_RDWR) : 0) |
    (flags.create ? O_CREAT : 0);
  return c.check("open", path, () => c.symbol("open")(p, f, mode));
}

/** The `openat(2)` flags for {@linkcode Libc.openAt}. */
function openAtFlags(c: Core, flags: OpenAtFlags): number {
  return O_CLOEXEC | c.O_NOFOLLOW | O_NOCTTY |
    (flags.path ? O_PATH : O_NONBLOCK |
      (flags.write ? (flags.append ? O_WRONLY | O_APPEND : O_RDWR) : 0) |
      (flags.create ? O_CREAT : 0) |
      (flags.exclusive ? O_EXCL : 0));
}

/**
 * `statx(2)` of a descriptor, or of a path without following a final
 * symlink unless `follow`.
 *
 * @param c The shared core.
 * @param target A path or a descriptor.
 * @param follow Follow a final symlink of a path.
 * @returns What the kernel reports.
 * @throws {SysError} When `statx` fails.
 */
export function statx(
  c: Core,
  target: string | number,
  follow = false,
): FileStat {
  const buf = new Uint8Array(STATX_SIZE);
  const statx = c.symbol("statx");
  if (typeof target === "number") {
    const empty = cstr("");
    c.check(
      "statx",
      `fd ${target}`,
      () => statx(target, empty, AT_EMPTY_PATH, STATX_BASIC_STATS, buf),
    );
  } else {
    const p = cstr(target);
    const flags = follow ? 0 : AT_SYMLINK_NOFOLLOW;
    c.check(
      "statx",
      target,
      () => statx(AT_FDCWD, p, flags, STATX_BASIC_STATS, buf),
    );
  }
  return fileStat(new DataView(buf.buffer));
}

/** A `struct statx` as a {@linkcode FileStat}. */
function fileStat(v: DataView): FileStat {
  const mode = v.getUint16(28, true);
  return {
    type: FILE_TYPES[mode & 0o170000] ?? "file",
    uid: v.getUint32(20, true),
    gid: v.getUint32(24, true),
    nlink: v.getUint32(16, true),
    rdev: `${v.getUint32(128, true)}:${v.getUint32(132, true)}`,
    mode: mode & 0o7777,
    ino: v.getBigUint64(32, true),
    size: Number(v.getBigUint64(40, true)),
    dev: `${v.getUint32(136, true)}:${v.getUint32(140, true)}`,
    devNumber: makedev(v.getUint32(136, true), v.getUint32(140, true)),
  };
}

/** glibc's `makedev()`: a major and minor number as one `dev_t`. */
function makedev(major: number, minor: number): bigint {
  const ma = BigInt(major);
  const mi = BigInt(minor);
  return (mi & 0xffn) | ((ma & 0xfffn) << 8n) | ((mi & ~0xffn) << 12n) |
    ((ma & ~0xfffn) << 32n);
}
