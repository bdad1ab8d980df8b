/**
 * The log file of a detached daemon, on descriptors 1 and 2: opening it
 * safely, and reopening it (SIGHUP, after logrotate) by swapping the file
 * under both descriptors at once.
 *
 * @module
 */
import { type Libc, SysError } from "../ffi/mod.ts";
import { DaemonError, Exit } from "./errors.ts";

/**
 * Open a log file for appending: created with mode 0640, never through a
 * symlink, refused when it is a directory or a FIFO.
 *
 * @returns The descriptor (close-on-exec).
 * @throws {DaemonError} With a worded reason.
 */
export function openLogFile(libc: Libc, path: string): number {
  const q = JSON.stringify(path);
  let fd: number;
  try {
    fd = libc.open(path, { write: true, append: true, create: true }, 0o640);
  } catch (err) {
    if (!(err instanceof SysError)) throw err;
    const why = err.code === "ELOOP"
      ? "it is a symbolic link"
      : err.code === "ENOENT"
      ? "its directory does not exist"
      : err.code === "EACCES" || err.code === "EPERM"
      ? "permission denied"
      : err.reason.toLowerCase();
    throw new DaemonError(
      `Cannot open log file ${q}: ${why}`,
      err.code === "EACCES" || err.code === "EPERM"
        ? Exit.PRIVILEGE
        : Exit.FAILURE,
      { cause: err },
    );
  }
  const type = libc.stat(fd).type;
  if (type !== "file" && type !== "char-device") {
    libc.close(fd);
    throw new DaemonError(
      `Cannot open log file ${q}: it is not a regular file`,
    );
  }
  return fd;
}

/**
 * Point descriptors 1 and 2 at the log file, freshly opened, and every other
 * descriptor that shared the old log file with them: the runtime keeps
 * duplicates of 1 and 2 of its own (Node compatibility's `process.stdout`),
 * which would otherwise keep writing to, and holding open, a rotated file.
 */
export function redirectToLogFile(libc: Libc, path: string): void {
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
  const fd = openLogFile(libc, path);
  try {
    for (const target of targets) libc.dup2(fd, target);
  } finally {
    libc.close(fd);
  }
}
