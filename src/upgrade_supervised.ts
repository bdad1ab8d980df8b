/**
 * `upgrade` under the supervisor of `start --restart`: the supervisor holds
 * the pidfile and is the daemon's parent, so it starts the new generation,
 * waits for it to be ready and stops the old one. `upgrade` writes what to
 * run into a root-owned request file beside the pidfile, sends SIGWINCH
 * (the first user signal opens Deno's inspector, the second is the
 * payload's), and follows
 * the answer in the supervisor's state file. The pidfile keeps naming the
 * supervisor; its restart counts are untouched.
 *
 * @module
 */
import type { Libc } from "../ffi/mod.ts";
import { DaemonError, Exit } from "./errors.ts";
import type { CoreOptions } from "./options.ts";
import { pinChild } from "./pin.ts";
import { type Pinned, signal } from "./process.ts";
import { SUPERVISOR_GRACE } from "./stage.ts";
import type { StartOptions } from "./start.ts";
import {
  type LaunchRecord,
  readState,
  readSupervisorState,
  writeLaunchRecord,
  writeUpgradeRequest,
} from "./state.ts";
import { oneLine } from "./text.ts";

/** What `upgrade` reports. */
export interface UpgradeResult {
  /** The new generation's pid. */
  pid: number;
  /** The pid of the generation it replaced. */
  previous: number;
  /** The new generation's number. */
  generation: number;
  /** The supervisor's pid, under `start --restart`. */
  supervisor?: number;
}

/** The largest generation number an old daemon is believed about. */
const GENERATION_MAX = 2 ** 31;

/**
 * The number of the generation that replaces daemon `pid`: one more than
 * it publishes. Its word is not believed below 1: a replaced daemon that
 * claimed 0 would have its successor start as a first generation, which
 * refuses the port it holds, and so stay unreplaceable.
 */
export function nextGeneration(libc: Libc, pid: number): number {
  const published = readState(libc, pid)?.generation ?? 1;
  return Math.min(Math.max(published, 1), GENERATION_MAX) + 1;
}

/**
 * Have the supervisor start the new generation, then stop the old one.
 *
 * @returns The new generation, once it is ready and the old one has exited.
 * @throws {DaemonError} With the new generation's error when it failed.
 */
export async function upgradeSupervised(
  libc: Libc,
  core: CoreOptions & { pidfile: string },
  options: StartOptions & { program: string[] },
  record: LaunchRecord,
  supervisor: Pinned,
): Promise<UpgradeResult> {
  const path = core.pidfile;
  const sup = readSupervisorState(libc, path, supervisor.pid);
  if (sup === null || sup.child === null || !sup.childReady) {
    throw new DaemonError(
      "Cannot upgrade now: the supervisor has no ready daemon (it is restarting one)",
    );
  }
  const old = pinChild(libc, supervisor.pid, sup.child);
  if (old === null) {
    throw new DaemonError("Cannot upgrade now: the daemon just exited");
  }
  try {
    const id = crypto.randomUUID();
    const generation = nextGeneration(libc, old.pid);
    writeUpgradeRequest(libc, path, {
      id,
      program: options.program,
      daemon: {
        core,
        options: options.options,
        identity: options.identity ?? null,
      },
      generation,
    });
    signal(libc, supervisor.pidfd, supervisor.pid, "SIGWINCH");
    const next = await answer(libc, path, supervisor, id, core);
    writeLaunchRecord(libc, path, {
      ...record,
      options: { ...record.options, ...options.given },
    });
    // The supervisor stops the old one; its stop timeout applies.
    await libc.pidfdWait(
      old.pidfd,
      (core.stopTimeout + SUPERVISOR_GRACE) * 1000,
    );
    return {
      pid: next,
      previous: old.pid,
      generation,
      supervisor: supervisor.pid,
    };
  } finally {
    libc.close(old.pidfd);
  }
}

/** Wait for the supervisor's answer to request `id`: the new pid, or its error. */
async function answer(
  libc: Libc,
  path: string,
  supervisor: Pinned,
  id: string,
  core: CoreOptions,
): Promise<number> {
  // The supervisor's own ready timeout ends a new generation that hangs.
  const deadline = performance.now() +
    (core.readyTimeout + core.stopTimeout + SUPERVISOR_GRACE) * 1000;
  while (performance.now() < deadline) {
    const state = readSupervisorState(libc, path, supervisor.pid);
    if (state?.refused?.id === id) {
      throw new DaemonError(oneLine(String(state.refused.error)));
    }
    const up = state?.upgrade;
    if (up?.id === id && up.outcome === "failed") {
      // The text may be the new daemon's own: one printable line.
      throw new DaemonError(oneLine(String(up.error ?? "The upgrade failed")));
    }
    if (up?.id === id && up.outcome === "done" && typeof up.next === "number") {
      return up.next;
    }
    if (await libc.pidfdWait(supervisor.pidfd, 20)) {
      throw new DaemonError(
        `The supervisor (pid ${supervisor.pid}) exited during the upgrade`,
      );
    }
  }
  throw new DaemonError(
    "The supervisor did not answer the upgrade request",
    Exit.FAILURE,
  );
}
