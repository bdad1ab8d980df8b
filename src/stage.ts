/**
 * How a re-executed process learns its stage without any marker the payload
 * or its children could see: a memfd named {@linkcode STAGE_MEMFD} on fd 3,
 * holding the stage as JSON. The environment and argv stay exactly the
 * caller's; the memfd is closed before the payload runs.
 *
 * @module
 */
import type { Libc } from "../ffi/mod.ts";

/** The memfd name the stage descriptor carries. */
export const STAGE_MEMFD = "denod-stage";
/** Where the stage memfd sits in a spawned process. */
export const STAGE_FD = 3;
/** Where the readiness pipe's write end sits in a spawned process. */
export const READY_FD = 4;
/** Where the locked pidfile sits in a spawned process. */
export const PIDFILE_FD = 5;

/** What a spawned process is told. */
export interface Stage {
  /** `leader`: the session leader that only spawns the daemon; `daemon`: the daemon. */
  stage: "leader" | "daemon";
  /** Absolute pidfile path (its locked descriptor is on {@linkcode PIDFILE_FD}). */
  pidfile: string;
  /** Set `PR_SET_NO_NEW_PRIVS` before spawning the daemon, so that all its threads have it. */
  noNewPrivs: boolean;
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** A memfd holding `stage`, to be placed on {@linkcode STAGE_FD}. */
export function stageMemfd(libc: Libc, stage: Stage): number {
  return libc.memfd(STAGE_MEMFD, encoder.encode(JSON.stringify(stage)));
}

/**
 * Read and close this process's stage descriptor, if it has one.
 *
 * @returns The stage, or `null` for a process started by a user.
 */
export function takeStage(libc: Libc): Stage | null {
  if (libc.memfdName(STAGE_FD) !== STAGE_MEMFD) return null;
  try {
    const data = JSON.parse(decoder.decode(libc.readAll(STAGE_FD)));
    if (
      (data.stage !== "leader" && data.stage !== "daemon") ||
      typeof data.pidfile !== "string" || typeof data.noNewPrivs !== "boolean"
    ) {
      throw new Error(`Malformed stage descriptor: ${JSON.stringify(data)}`);
    }
    return {
      stage: data.stage,
      pidfile: data.pidfile,
      noNewPrivs: data.noNewPrivs,
    };
  } finally {
    libc.close(STAGE_FD);
  }
}
