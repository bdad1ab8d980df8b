/**
 * How a re-executed process learns its stage without any marker the payload
 * or its children could see: a memfd named {@linkcode STAGE_MEMFD} on fd 3,
 * holding the stage as JSON. The environment and argv stay exactly the
 * caller's; the memfd is closed before the payload runs.
 *
 * @module
 */
import type { LogLevel } from "@logtape/logtape";
import type { Libc } from "../ffi/mod.ts";
import type { CoreOptions } from "./options.ts";
import type { Identity } from "./privileges.ts";
import {
  enterPrivateDenoDir,
  type PrivateDenoDir,
  spawnEnv,
} from "./denodir.ts";

/** The memfd name the stage descriptor carries. */
export const STAGE_MEMFD = "denod-stage";
/** Where the stage memfd sits in a spawned process. */
export const STAGE_FD = 3;
/** Where the readiness pipe's write end sits in a spawned process. */
export const READY_FD = 4;
/** Where the locked pidfile sits in a spawned process. */
export const PIDFILE_FD = 5;
/**
 * Where the session leader has a writable descriptor to the pidfile, to
 * write the next stage's pid; no later stage gets one.
 */
export const PIDFILE_WRITE_FD = 7;
/**
 * Where a supervised daemon has the read end of a pipe whose write end only
 * its supervisor holds: end of file there means the supervisor is gone.
 */
export const LIFELINE_FD = 6;
/**
 * Where the daemon (and its supervisor) has the exit record open for
 * writing: opened before the drop, so that the daemon can say how it ended
 * after dropping privileges without owning the file.
 */
export const EXIT_FD = 8;

/**
 * Seconds a supervisor may take beyond the daemon's stop timeout: it waits
 * for the daemon, then kills and reaps it.
 */
export const SUPERVISOR_GRACE = 5;

/**
 * The signals a spawned daemon or supervisor starts with blocked, and
 * unblocks once it handles them: `stop` (or `reload`) may signal it as soon
 * as the pidfile names it, before its handlers exist, and the signal's
 * default action would kill it (leaving the pidfile behind).
 */
export const HANDLED_SIGNALS = ["SIGTERM", "SIGINT", "SIGHUP"] as const;

/** How the supervisor of `start --restart` runs and logs. */
export interface SupervisorConfig {
  /** The daemon's name: log category and syslog tag. */
  name: string;
  /** When to restart. */
  restart: "on-failure" | "always";
  /** Seconds before the first restart. */
  delay: number;
  /** Seconds of uptime after which restarts in a row count from zero. */
  reset: number;
  /** Restarts in a row before giving up. */
  maxRestarts: number;
  /** The daemon's stop timeout, in seconds. */
  stopTimeout: number;
  /** Seconds a restarted daemon has to become ready. */
  readyTimeout: number;
  /** Set `RLIMIT_CORE` to 0 in the supervisor. */
  noCoreDumps: boolean;
  /** Where the supervisor's own records go. */
  log: SupervisorLogConfig;
}

/** The supervisor's log destination, resolved by `start`. */
export interface SupervisorLogConfig {
  /** The lowest level written. */
  level: LogLevel;
  /** Text lines or JSON lines (files only). */
  format: "text" | "json";
  /** The log file (also stdout and stderr) or syslog. */
  to: "file" | "syslog";
  /** The log file path. */
  file: string;
  /** The syslog socket. */
  syslogSocket: string;
  /** The syslog facility number. */
  facility: number;
  /** Where it logs, in words, for `status`. */
  describe: string;
  /** Who a log file the supervisor creates is handed to: the daemon's user. */
  owner?: { uid: number; gid: number };
}

/**
 * What the daemon runs with, resolved once by the command that started it:
 * no later stage parses the command line or probes the environment again.
 */
export interface DaemonSettings {
  /** The library's options, resolved (absolute paths, where it logs). */
  core: CoreOptions;
  /** The daemon's own options, validated. */
  options: Record<string, unknown>;
  /** Who it becomes after `prepare`, or `null` to stay. */
  identity: Identity | null;
}

/**
 * A generation started by `upgrade` while generation `generation - 1` (pid
 * `previous`) keeps serving.
 */
export interface UpgradeOf {
  /** This generation's number: 2 for the first upgrade. */
  generation: number;
  /** The pid of the generation it replaces. */
  previous: number;
}

/** What every spawned process is told. */
interface StageBase {
  /** Absolute pidfile path (its locked descriptor is on {@linkcode PIDFILE_FD}, except for a supervised daemon). */
  pidfile: string;
  /** Set `PR_SET_NO_NEW_PRIVS` before spawning the daemon, so that all its threads have it. */
  noNewPrivs: boolean;
  /** The daemon's settings. */
  daemon: DaemonSettings;
  /**
   * Set when `upgrade` spawned it: the session leader then sends the
   * daemon's pid down {@linkcode PIDFILE_WRITE_FD} (a pipe, not the
   * pidfile, which keeps naming the old generation until the new one is
   * ready).
   */
  upgrade?: UpgradeOf | null;
}

/** What a spawned process is told, by stage. */
export type Stage =
  /** The session leader: it only spawns the next stage. */
  | StageBase & {
    stage: "leader";
    /** How to supervise under `start --restart`, else `null`. */
    supervise: SupervisorConfig | null;
    /** The daemon's private `DENO_DIR`, made by `start` or `upgrade`. */
    denoDir: PrivateDenoDir | null;
  }
  /** The supervisor of `start --restart`. */
  | StageBase & { stage: "supervisor"; supervise: SupervisorConfig }
  /** The daemon. */
  | StageBase & {
    stage: "daemon";
    /** The supervisor's pid, under `start --restart`. */
    supervisor: number | null;
    /** Under `deno run`: the private `DENO_DIR` it booted with. */
    denoDir: PrivateDenoDir | null;
  };

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** A memfd holding `stage`, to be placed on {@linkcode STAGE_FD}. */
function stageMemfd(libc: Libc, stage: Stage): number {
  return libc.memfd(STAGE_MEMFD, encoder.encode(JSON.stringify(stage)));
}

/**
 * Spawn this program again as `stage`, with stdin on /dev/null, stdout and
 * stderr on `out`, the stage memfd,
 * the readiness pipe's write end and, when given, the locked pidfile, the
 * pidfile's writing descriptor (for the session leader only), the
 * supervisor's lifeline and the exit record. No other descriptor is passed
 * on.
 *
 * @returns The new process's pid.
 */
export function spawnStage(
  libc: Libc,
  stage: Stage,
  io: {
    stdio: { out: number };
    readyFd: number;
    pidfileFd?: number;
    pidfileWriteFd?: number;
    lifelineFd?: number;
    exitFd?: number;
    setsid?: boolean;
    env?: Record<string, string>;
    /** The program to run instead of this one as the kernel started it. */
    command?: { path: string; argv: string[] };
  },
): number {
  // Under deno run --user, the daemon boots with Deno caches of its own.
  const env = stage.stage === "daemon"
    ? spawnEnv(stage.denoDir, io.env)
    : io.env;
  const memfd = stageMemfd(libc, stage);
  try {
    const { path, argv } = io.command ?? libc.selfCommand();
    const { stdio } = io;
    return libc.spawn({
      path,
      argv,
      setsid: io.setsid ?? false,
      blocked: stage.stage === "leader" ? [] : HANDLED_SIGNALS,
      env: env && Object.entries(env).map(([k, v]) => `${k}=${v}`),
      fds: [
        { fd: 0, open: "/dev/null" },
        { fd: 1, dup: stdio.out },
        { fd: 2, dup: 1 },
        { fd: STAGE_FD, dup: memfd },
        { fd: READY_FD, dup: io.readyFd },
        ...(io.pidfileFd === undefined
          ? []
          : [{ fd: PIDFILE_FD, dup: io.pidfileFd }]),
        ...(io.lifelineFd === undefined
          ? []
          : [{ fd: LIFELINE_FD, dup: io.lifelineFd }]),
        ...(io.pidfileWriteFd === undefined
          ? []
          : [{ fd: PIDFILE_WRITE_FD, dup: io.pidfileWriteFd }]),
        ...(io.exitFd === undefined ? [] : [{ fd: EXIT_FD, dup: io.exitFd }]),
      ],
    });
  } finally {
    libc.close(memfd);
  }
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
    if (!isStage(data)) {
      throw new Error(`Malformed stage descriptor: ${JSON.stringify(data)}`);
    }
    if (data.stage === "daemon" && data.denoDir !== null) {
      enterPrivateDenoDir(data.denoDir);
    }
    return data;
  } finally {
    libc.close(STAGE_FD);
  }
}

/** The supervisor's own stage descriptor. */
export type SupervisorStage = Extract<Stage, { stage: "supervisor" }>;

/** Whether parsed JSON has the shape of a {@linkcode Stage}. */
function isStage(data: unknown): data is Stage {
  const d = data as Partial<Record<string, unknown>> | null;
  if (
    typeof d !== "object" || d === null || typeof d.pidfile !== "string" ||
    typeof d.noNewPrivs !== "boolean" || typeof d.daemon !== "object" ||
    d.daemon === null
  ) return false;
  const daemon = d.daemon as Partial<DaemonSettings>;
  if (
    typeof daemon.core !== "object" || typeof daemon.options !== "object" ||
    daemon.identity === undefined
  ) return false;
  switch (d.stage) {
    case "leader":
      return typeof d.supervise === "object" && isDenoDir(d.denoDir);
    case "supervisor":
      return typeof d.supervise === "object" && d.supervise !== null;
    case "daemon":
      return (d.supervisor === null || typeof d.supervisor === "number") &&
        isDenoDir(d.denoDir);
    default:
      return false;
  }
}

/** Whether parsed JSON is a private `DENO_DIR`, or `null` for none. */
function isDenoDir(data: unknown): data is PrivateDenoDir | null {
  return data === null ||
    typeof (data as PrivateDenoDir | undefined)?.dir === "string";
}

/** The exit record this process inherited on {@linkcode EXIT_FD}, if any. */
export function inheritedExitFd(libc: Libc): number | undefined {
  try {
    if (libc.stat(EXIT_FD).type !== "file") return undefined;
  } catch {
    return undefined;
  }
  libc.setCloexec(EXIT_FD, true);
  return EXIT_FD;
}
