/**
 * Finding the daemon from its pidfile, believed only when the kernel
 * agrees: the pid is pinned with a pidfd, then its holder of the pidfile's
 * lock, executable and uids are checked.
 *
 * @module
 */
import { type FileStat, type Libc, SysError } from "../ffi/mod.ts";
import { DaemonError } from "./errors.ts";
import { inspectPidfile, type PidfileState } from "./pidfile.ts";
import type { Pinned } from "./process.ts";
import { type LaunchRecord, readLaunchRecord } from "./state.ts";
import { oneLine } from "./text.ts";
import { sleep } from "./timer.ts";

/** How often a waiting command looks at the pidfile again. */
const LOOK_AGAIN_MS = 20;
/**
 * How long an exiting pidfile holder is given to end (a dying process takes
 * milliseconds; one whose main thread exited on purpose is not waited for
 * beyond this).
 */
const EXITING_MS = 2000;

/**
 * The pidfile's state, waiting up to `waitMs` for a starting daemon to
 * write its pid.
 */
export async function settledState(
  libc: Libc,
  path: string,
  waitMs: number,
): Promise<PidfileState> {
  const deadline = performance.now() + waitMs;
  for (;;) {
    const st = inspectPidfile(libc, path);
    if (st.state !== "starting" || performance.now() > deadline) return st;
    await sleep(LOOK_AGAIN_MS);
  }
}

/**
 * Why the kernel's view of `pid` does not match the daemon that should hold
 * the pidfile `file`, or `null` when it does: it holds the exclusive lock
 * on that file, runs this program (or the one that started it), as one of
 * the uids it was started with or drops to.
 */
export function distrust(
  libc: Libc,
  pid: number,
  file: FileStat,
  launch: LaunchRecord | null,
): string | null {
  const view = libc.processView(pid, file);
  if (view === null) return "has exited";
  const root = libc.geteuid() === 0;
  // A non-root caller cannot look into another user's process; the kernel
  // lets it signal only its own anyway.
  if (view.holdsLock === false || (view.holdsLock === null && root)) {
    return "does not hold the pidfile's lock";
  }
  const exes = [Deno.execPath(), launch?.exe];
  if (view.exe !== null && !exes.includes(view.exe)) {
    return `runs ${JSON.stringify(oneLine(view.exe))}, not this program`;
  }
  if (view.exe === null && root) return "runs no executable root can see";
  const uids = launch?.uids ?? [file.uid];
  if (!uids.includes(view.uid) || !uids.includes(view.euid)) {
    return `runs as uid ${view.euid}, not as ${
      uids.map((u) => `uid ${u}`).join(" or ")
    }`;
  }
  return null;
}

/**
 * A pidfd for the daemon that holds the pidfile lock, or `null` when none
 * runs. The pid is read again after the pidfd is opened, and then checked
 * against the kernel's view (see {@linkcode distrust}), so the pidfd is
 * known to refer to the lock holder and not to a process that reused its
 * pid or was named by someone else.
 *
 * @throws {DaemonError} When the pidfile names a process that is not the daemon.
 */
export async function pinDaemon(
  libc: Libc,
  path: string,
  waitMs: number,
): Promise<Pinned | null> {
  const deadline = performance.now() + waitMs;
  for (let attempt = 0; attempt < 50; attempt++) {
    const st = await settledState(libc, path, waitMs);
    if (st.state === "starting") {
      throw new DaemonError(
        `Pidfile ${JSON.stringify(path)} is locked but names no process`,
      );
    }
    if (st.state !== "running") return null;
    let pidfd: number;
    try {
      pidfd = libc.pidfdOpen(st.pid);
    } catch (err) {
      if (err instanceof SysError && err.code === "ESRCH") continue;
      throw err;
    }
    const again = inspectPidfile(libc, path);
    if (again.state !== "running" || again.pid !== st.pid) {
      libc.close(pidfd);
      continue;
    }
    // Exiting (a daemon killed a moment ago): its lock goes with its last
    // thread, and its descriptors no longer show. Wait for its end.
    if (
      libc.processView(st.pid)?.exiting === true &&
      await libc.pidfdWait(
        pidfd,
        Math.min(EXITING_MS, Math.max(0, deadline - performance.now())),
      )
    ) {
      libc.close(pidfd);
      continue;
    }
    const why = distrust(
      libc,
      st.pid,
      again.file,
      readLaunchRecord(libc, path),
    );
    if (why === null) return { pid: st.pid, pidfd };
    libc.close(pidfd);
    // Gone since: look again; anything else is a pidfile not to believe.
    if (why === "has exited") continue;
    throw new DaemonError(
      `Not trusting pidfile ${
        JSON.stringify(path)
      }: it names pid ${st.pid}, which ${why}`,
    );
  }
  throw new DaemonError(`Pidfile ${JSON.stringify(path)} keeps changing`);
}

/**
 * Process `child`, pinned and checked to be `parent`'s child (a child
 * whose parent has not reaped it keeps its pid, so the pidfd is on that
 * child), or `null`. The supervisor's running daemon is `null` between two
 * runs.
 */
export function pinChild(
  libc: Libc,
  parent: number,
  child: number,
): Pinned | null {
  let pidfd: number;
  try {
    pidfd = libc.pidfdOpen(child);
  } catch {
    return null;
  }
  if (libc.processView(child)?.ppid === parent) return { pid: child, pidfd };
  libc.close(pidfd);
  return null;
}
