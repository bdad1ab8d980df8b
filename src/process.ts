/**
 * Processes pinned with a pidfd: signalled through it, so a pid that was
 * reused meanwhile is never hit.
 *
 * @module
 */
import { type Libc, SysError } from "../ffi/mod.ts";
import { DaemonError, Exit } from "./errors.ts";

/** A process pinned with a pidfd (and checked to be the one meant). */
export interface Pinned {
  pid: number;
  pidfd: number;
}

/**
 * Send a signal through a pidfd; a process already gone is no error, a
 * refusal is worded for the user.
 */
export function signal(
  libc: Libc,
  pidfd: number,
  pid: number,
  sig: Deno.Signal,
): void {
  try {
    libc.pidfdSignal(pidfd, sig);
  } catch (err) {
    if (err instanceof SysError && err.code === "ESRCH") return;
    if (err instanceof SysError && err.code === "EPERM") {
      throw new DaemonError(
        `Cannot signal pid ${pid}: permission denied`,
        Exit.PRIVILEGE,
        { cause: err },
      );
    }
    throw err;
  }
}

/**
 * SIGTERM a pinned process, wait `stopTimeout` seconds, then SIGKILL it;
 * its pidfd is closed afterwards.
 *
 * @returns `"terminated"` or `"killed"`.
 */
export async function terminate(
  libc: Libc,
  { pid, pidfd }: Pinned,
  stopTimeout: number,
): Promise<"terminated" | "killed"> {
  try {
    signal(libc, pidfd, pid, "SIGTERM");
    if (await libc.pidfdWait(pidfd, stopTimeout * 1000)) return "terminated";
    signal(libc, pidfd, pid, "SIGKILL");
    if (await libc.pidfdWait(pidfd, 10_000)) return "killed";
    throw new DaemonError(`Pid ${pid} survived SIGKILL for 10 s`);
  } finally {
    libc.close(pidfd);
  }
}
