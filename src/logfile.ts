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
  const type = libc.stat(fd).mode & 0o170000;
  if (type !== 0o100000 && type !== 0o020000) {
    libc.close(fd);
    throw new DaemonError(
      `Cannot open log file ${q}: it is not a regular file`,
    );
  }
  return fd;
}

/** Point descriptors 1 and 2 at the log file, freshly opened. */
export function redirectToLogFile(libc: Libc, path: string): void {
  const fd = openLogFile(libc, path);
  try {
    libc.dup2(fd, 1);
    libc.dup2(fd, 2);
  } finally {
    libc.close(fd);
  }
}
