/**
 * The session leader `start` spawns (daemon(7) step 6): it spawns the
 * daemon, or the supervisor, records its pid and ends. It loads nothing
 * else: no parser, no logger, not `start` itself.
 *
 * @module
 */
import type { Libc } from "../ffi/mod.ts";
import { Exit } from "./errors.ts";
import { Pidfile } from "./pidfile.ts";
import { sendLine } from "./readiness.ts";
import {
  inheritedExitFd,
  PIDFILE_FD,
  PIDFILE_WRITE_FD,
  READY_FD,
  spawnStage,
  type Stage,
} from "./stage.ts";

/**
 * The session leader's whole job: spawn the daemon, or the supervisor of
 * `start --restart` (not a session leader, so it can never acquire a
 * controlling terminal), record its pid, and end. Only the leader gets a
 * descriptor it can write the pidfile through; the next stage gets the lock.
 */
export function runLeader(
  libc: Libc,
  stage: Extract<Stage, { stage: "leader" }>,
): number {
  try {
    // Set here, in the one thread that spawns the next stage, every thread
    // of it (and of every daemon a supervisor spawns) inherits it.
    if (stage.noNewPrivs) libc.setNoNewPrivs();
    if (stage.upgrade) return spawnUpgrade(libc, stage);
    const pidfile = Pidfile.adopt(
      libc,
      stage.pidfile,
      PIDFILE_FD,
      PIDFILE_WRITE_FD,
    );
    const { supervise, denoDir, ...common } = stage;
    const next: Stage = supervise === null
      ? { ...common, stage: "daemon", supervisor: null, denoDir }
      : { ...common, stage: "supervisor", supervise };
    const pid = spawnStage(
      libc,
      next,
      {
        stdio: { out: 1 },
        readyFd: READY_FD,
        pidfileFd: pidfile.fd,
        exitFd: inheritedExitFd(libc),
      },
    );
    // The pidfile names that process from now on, while the lock is held.
    pidfile.write(pid);
    pidfile.closeWriter();
    return Exit.OK;
  } catch (err) {
    sendLine(
      libc,
      READY_FD,
      "ERROR",
      `Cannot spawn the daemon: ${(err as Error).message}`,
    );
    return Exit.FAILURE;
  }
}

/**
 * The session leader of an upgrade: spawn the new daemon on the shared
 * lock and tell `upgrade` its pid through the pipe on
 * {@linkcode PIDFILE_WRITE_FD}; the pidfile is rewritten by `upgrade` once
 * the new generation is ready.
 */
function spawnUpgrade(
  libc: Libc,
  stage: Extract<Stage, { stage: "leader" }>,
): number {
  libc.setCloexec(PIDFILE_FD, true);
  libc.setCloexec(PIDFILE_WRITE_FD, true);
  const { supervise: _, denoDir, ...common } = stage;
  const pid = spawnStage(
    libc,
    { ...common, stage: "daemon", supervisor: null, denoDir },
    {
      stdio: { out: 1 },
      readyFd: READY_FD,
      pidfileFd: PIDFILE_FD,
      exitFd: inheritedExitFd(libc),
    },
  );
  libc.write(PIDFILE_WRITE_FD, new TextEncoder().encode(`${pid}\n`));
  return Exit.OK;
}
