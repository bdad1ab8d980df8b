/**
 * Processes pinned with a pidfd: signalled through it, so a pid that was
 * reused meanwhile is never hit.
 *
 * @module
 */
import { type ExitStatus, type Libc, SysError } from "../ffi/mod.ts";
import { DaemonError, Exit } from "./errors.ts";
import { sleep } from "./timer.ts";

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

/** How often an exit status held by a tracer is asked for again. */
const COLLECT_AGAIN_MS = 20;

/**
 * Collect the exit status of a child whose pidfd says it exited. A process
 * that traces it (ptrace: its own user may, to hold root's caller) keeps
 * the status from us until it lets go; it is asked for again, never waited
 * for blocked, for `ms` at most.
 *
 * @returns The status, or `null` when it was not given within `ms`: the
 * child is then left a zombie for whoever outlives it.
 */
export async function collectExit(
  libc: Libc,
  pidfd: number,
  ms: number,
): Promise<ExitStatus | null> {
  const deadline = performance.now() + ms;
  for (;;) {
    const status = libc.reap(pidfd);
    if (status !== null || performance.now() >= deadline) return status;
    await sleep(COLLECT_AGAIN_MS);
  }
}

/** Why no status could be collected (see {@linkcode collectExit}). */
const HELD = "a process tracing it holds";

/** `"status 1"`, `"signal SIGSEGV (core dumped)"`, to follow "exited with". */
export function describeExit(status: ExitStatus | null): string {
  if (status === null) return `an unknown status (${HELD} it)`;
  return status.exited
    ? `status ${status.code}`
    : `signal ${status.signal}${dumped(status)}`;
}

/**
 * How a process ended, to follow "The daemon": `exited with status 3`,
 * `was killed by SIGABRT (core dumped)`.
 */
export function howItEnded(status: ExitStatus | null): string {
  if (status === null) return `ended (${HELD} its exit status)`;
  return status.exited
    ? `exited with status ${status.code}`
    : `was killed by ${status.signal}${dumped(status)}`;
}

/** `" (core dumped)"` for a signal that dumped core. */
function dumped(status: ExitStatus & { exited: false }): string {
  return status.coreDumped ? " (core dumped)" : "";
}
