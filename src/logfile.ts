/**
 * The log file of a detached daemon, on descriptors 1 and 2: opening it
 * safely, and reopening it (SIGHUP, after logrotate) by swapping the file
 * under both descriptors at once.
 *
 * @module
 */
import type { Libc } from "../ffi/mod.ts";
import { openChecked } from "./safe_open.ts";

/** Who a log file is handed to: the user the daemon becomes. */
export interface LogOwner {
  /** The uid, or `0xffffffff` to leave it. */
  uid: number;
  /** The gid. */
  gid: number;
}

/** `(uid_t)-1`: leave the owner as it is. */
export const UNCHANGED_ID = 0xffffffff;
/** `/dev/null`'s device numbers: the one device a log may go to. */
const DEV_NULL = "1:3";

/**
 * Open a log file for appending, never through a symlink in any component
 * and without blocking: a new file gets mode 0640 whatever the umask; an
 * existing one must be a regular file with one link, owned by root, the
 * caller or `handTo`'s user. `/dev/null` is taken as it is. Run as root with
 * `handTo`, the file is given to that user, so that the daemon can reopen it
 * after dropping privileges.
 *
 * @returns The descriptor (close-on-exec).
 * @throws {DaemonError} With a worded reason: exit 2 for a refused file, 4
 * for a permission problem.
 */
export function openLogFile(
  libc: Libc,
  path: string,
  handTo?: LogOwner,
): number {
  const euid = libc.geteuid();
  const owners = [0, euid];
  if (handTo !== undefined && handTo.uid !== UNCHANGED_ID) {
    owners.push(handTo.uid);
  }
  const { fd, kind } = openChecked(
    libc,
    path,
    { what: "log file", owners, trustDirs: false },
    { write: true, append: true, create: true, mode: 0o640 },
    { device: DEV_NULL },
  );
  try {
    if (kind === "file" && handTo !== undefined && euid === 0) {
      libc.fchown(fd, handTo.uid, handTo.gid);
    }
  } catch (err) {
    libc.close(fd);
    throw err;
  }
  return fd;
}

/**
 * Point descriptors 1 and 2 at the log file, freshly opened, and every other
 * descriptor that shared the old log file with them: the runtime keeps
 * duplicates of 1 and 2 of its own (Node compatibility's `process.stdout`),
 * which would otherwise keep writing to, and holding open, a rotated file.
 */
export function redirectToLogFile(
  libc: Libc,
  path: string,
  handTo?: LogOwner,
): void {
  const old = libc.stat(2);
  const targets = new Set([1, 2]);
  for (const fd of libc.openFds()) {
    if (fd <= 2) continue;
    try {
      const st = libc.stat(fd);
      if (st.dev === old.dev && st.ino === old.ino) targets.add(fd);
    } catch {
      // The directory's own descriptor, closed by now.
    }
  }
  const fd = openLogFile(libc, path, handTo);
  try {
    for (const target of targets) libc.dup2(fd, target);
  } finally {
    libc.close(fd);
  }
}
