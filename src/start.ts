/**
 * `start`: everything checkable is checked here, in the caller's terminal;
 * then the daemon is created with two `posix_spawn`s (a session leader that
 * spawns the daemon and exits, daemon(7) step 6) and the caller waits on a
 * pipe until the daemon says it is ready or why it failed.
 *
 * @module
 */
import type { Libc } from "../ffi/mod.ts";
import { DaemonError, Exit, UsageError } from "./errors.ts";
import { openLogFile } from "./logfile.ts";
import type { CoreOptions } from "./options.ts";
import { inspectPidfile, Pidfile, PidfileLockedError } from "./pidfile.ts";
import { readMessages, sendLine } from "./readiness.ts";
import {
  PIDFILE_FD,
  READY_FD,
  spawnStage,
  type Stage,
  type SupervisorConfig,
} from "./stage.ts";
import { removeSideFiles } from "./state.ts";
import { FACILITIES } from "./syslog.ts";
import { SUPERVISOR_GRACE, terminate } from "./control.ts";
import { clearedEnv, type Identity } from "./privileges.ts";
import { describeLogTo } from "./resolve.ts";
import { oneLine } from "./text.ts";

/**
 * Service-manager variables name this process's pid, which the daemon will
 * not have. Sockets passed by socket activation are not handed on, so
 * `LISTEN_*` go. The watchdog, when it was meant for this process, passes to
 * the daemon (which announces itself with `MAINPID`): `WATCHDOG_PID` goes and
 * `WATCHDOG_USEC` stays; a watchdog meant for another process goes entirely.
 */
function handOverServiceEnv(): void {
  for (const name of ["LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES"]) {
    Deno.env.delete(name);
  }
  const watchdogPid = Deno.env.get("WATCHDOG_PID");
  if (watchdogPid !== undefined && Number(watchdogPid) !== Deno.pid) {
    Deno.env.delete("WATCHDOG_USEC");
  }
  Deno.env.delete("WATCHDOG_PID");
}

/** `(uid_t)-1`: leave the owner as it is. */
const UNCHANGED_ID = 0xffffffff;

/** What `start` reports. */
export type StartResult =
  /** `pid` is the daemon's; `supervisor` the supervisor's, under `--restart`. */
  | { outcome: "started"; pid: number; supervisor?: number }
  | { outcome: "already-running"; pid: number | undefined };

/** The supervisor's settings, from the resolved options. */
function supervisorConfig(
  name: string,
  core: CoreOptions,
): SupervisorConfig | undefined {
  if (core.restart === "no") return undefined;
  if (Deno.env.get("NOTIFY_SOCKET") !== undefined) {
    // Two supervisors would fight over every restart.
    throw new DaemonError(
      "--restart is not for a daemon under a service manager (NOTIFY_SOCKET is set): let it restart the daemon (systemd: Restart=on-failure)",
      Exit.USAGE,
    );
  }
  return {
    name,
    restart: core.restart,
    delay: core.restartDelay,
    reset: core.restartReset,
    maxRestarts: core.maxRestarts,
    stopTimeout: core.stopTimeout,
    readyTimeout: core.readyTimeout,
    noCoreDumps: core.noCoreDumps,
    log: {
      level: core.logLevel,
      format: core.logFormat,
      to: core.logTo === "syslog" ? "syslog" : "file",
      file: core.logFile,
      syslogSocket: core.syslogSocket,
      facility: FACILITIES[core.syslog ?? "daemon"],
      describe: describeLogTo(core),
    },
  };
}

/**
 * The session leader's whole job: spawn the daemon, or the supervisor of
 * `start --restart` (not a session leader, so it can never acquire a
 * controlling terminal), record its pid, exit.
 */
export function runLeader(libc: Libc, stage: Stage): never {
  try {
    // Set here, in the one thread that spawns the next stage, every thread
    // of it (and of every daemon a supervisor spawns) inherits it.
    if (stage.noNewPrivs) libc.setNoNewPrivs();
    const pid = spawnStage(
      libc,
      { ...stage, stage: stage.supervise ? "supervisor" : "daemon" },
      { stdio: { out: 1 }, readyFd: READY_FD, pidfileFd: PIDFILE_FD },
    );
    // The pidfile names that process from now on, while the lock is held.
    const pidfile = Pidfile.adopt(libc, stage.pidfile, PIDFILE_FD);
    pidfile.write(pid);
    sendLine(libc, READY_FD, "PID", String(pid));
    Deno.exit(0);
  } catch (err) {
    sendLine(
      libc,
      READY_FD,
      "ERROR",
      `Cannot spawn the daemon: ${(err as Error).message}`,
    );
    Deno.exit(1);
  }
}

/** Create a default private directory (0700) if it is missing. */
async function ensurePrivateDir(dir: string): Promise<void> {
  try {
    await Deno.mkdir(dir, { recursive: true, mode: 0o700 });
  } catch (err) {
    throw new DaemonError(
      `Cannot create directory ${JSON.stringify(dir)}: ${
        (err as Error).message
      }`,
      Exit.FAILURE,
      { cause: err },
    );
  }
}

/** Refuse a `--chdir` that is not an existing directory, before detaching. */
export function checkDirectory(dir: string): void {
  let isDir = false;
  try {
    isDir = Deno.statSync(dir).isDirectory;
  } catch {
    // reported below
  }
  if (!isDir) {
    throw new UsageError(
      `Cannot use --chdir ${
        JSON.stringify(dir)
      }: it is not an existing directory`,
    );
  }
}

/** What {@linkcode start} needs besides the core options. */
export interface StartOptions {
  /** The daemon's name, for the supervisor's records. */
  name: string;
  /** A default directory to create first (mode 0700), if any. */
  privateDir?: string;
  /** Variables the daemon declares, kept by `--clear-env`. */
  declaredEnv?: readonly string[];
  /** Who the daemon becomes after `prepare`: the log file is handed to it. */
  identity?: Identity;
}

/**
 * Start the daemon in the background and wait until it is ready.
 *
 * @param libc The OS interface.
 * @param core Resolved core options (the pidfile is set).
 * @param options Name, directory to create, declared variables, identity.
 * @returns Started, or already running.
 * @throws {DaemonError} When it cannot start, with the daemon's own message.
 */
export async function start(
  libc: Libc,
  core: CoreOptions & { pidfile: string },
  options: StartOptions,
): Promise<StartResult> {
  const { privateDir, declaredEnv = [], identity, name } = options;
  const supervise = supervisorConfig(name, core);
  if (privateDir !== undefined) await ensurePrivateDir(privateDir);
  checkDirectory(core.chdir);
  const pidfile = await lockForStart(libc, core.pidfile, core.readyTimeout);
  if ("outcome" in pidfile) return pidfile;
  // Whoever held the pidfile before is gone: so are its side files.
  removeSideFiles(libc, core.pidfile);

  let leaderPid: number | undefined;
  /** The process the pidfile names: the daemon, or its supervisor. */
  let daemonPid: number | undefined;
  let readEnd = -1;
  /** Stop whatever was spawned (leader and daemon) and remove the pidfile. */
  const cleanup = async (): Promise<void> => {
    // The leader writes the daemon's pid to the pidfile before reporting it.
    daemonPid ??= pidfile.read();
    const wait = core.stopTimeout + (supervise ? SUPERVISOR_GRACE : 0);
    const pids = [leaderPid, daemonPid].filter((p) => p !== undefined);
    await Promise.all(
      pids.map((pid) => terminate(libc, pid, wait).catch(() => {})),
    );
    removeSideFiles(libc, core.pidfile);
    pidfile.remove();
  };
  try {
    // The log file is checked and created here, so a bad path is reported
    // in the terminal; the daemon gets it as stdout and stderr.
    const logFd = openLogFile(libc, core.logFile);
    try {
      // The daemon reopens it on SIGHUP after dropping privileges.
      if (identity !== undefined) {
        libc.fchown(logFd, identity.user?.uid ?? UNCHANGED_ID, identity.gid);
      }
    } finally {
      libc.close(logFd);
    }
    handOverServiceEnv();
    const env = core.clearEnv
      ? clearedEnv(Deno.env.toObject(), declaredEnv)
      : undefined;
    const [r, w] = libc.pipe();
    readEnd = r;
    try {
      leaderPid = spawnStage(
        libc,
        {
          stage: "leader",
          pidfile: core.pidfile,
          noNewPrivs: core.noNewPrivs,
          supervise,
        },
        {
          stdio: { logFile: core.logFile },
          readyFd: w,
          pidfileFd: pidfile.fd,
          setsid: true,
          env,
        },
      );
    } finally {
      libc.close(w);
    }
  } catch (err) {
    pidfile.remove();
    if (readEnd >= 0) libc.close(readEnd);
    throw err;
  }

  // Ctrl-C (or SIGTERM) while waiting stops the half-started daemon too.
  let interrupt = () => {};
  const interrupted = new Promise<"interrupted">((resolve) => {
    interrupt = () => resolve("interrupted");
  });
  Deno.addSignalListener("SIGINT", interrupt);
  Deno.addSignalListener("SIGTERM", interrupt);
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<"timeout">((resolve) => {
    timer = setTimeout(() => resolve("timeout"), core.readyTimeout * 1000);
  });
  let reading = true;
  const messages = (async () => {
    try {
      for await (const msg of readMessages(libc, readEnd)) {
        if (msg.kind === "PID") daemonPid = Number(msg.text);
        else return msg;
      }
      return null;
    } finally {
      reading = false;
    }
  })();
  const outcome = await Promise.race([messages, timeout, interrupted]);
  clearTimeout(timer);
  Deno.removeSignalListener("SIGINT", interrupt);
  Deno.removeSignalListener("SIGTERM", interrupt);
  // A read still blocked on another thread keeps the descriptor until the
  // daemon side closes; closing it under that read could hit a reused number.
  const closeReadEnd = () => {
    if (!reading) libc.close(readEnd);
  };

  if (
    outcome !== null && typeof outcome === "object" && outcome.kind === "READY"
  ) {
    // The daemon holds the lock on its own descriptor; ours is released.
    pidfile.close();
    closeReadEnd();
    // A supervisor reports its daemon's pid; the pidfile names the supervisor.
    return supervise
      ? { outcome: "started", pid: Number(outcome.text), supervisor: daemonPid }
      : { outcome: "started", pid: Number(outcome.text) };
  }
  await cleanup();
  // With the daemon side gone the reader sees end of file and finishes.
  let grace: ReturnType<typeof setTimeout> | undefined;
  await Promise.race([
    messages,
    new Promise((r) => grace = setTimeout(r, 1000)),
  ]);
  clearTimeout(grace);
  closeReadEnd();
  if (outcome === "interrupted") {
    throw new DaemonError("Interrupted: the starting daemon was stopped");
  }
  if (outcome === "timeout") {
    throw new DaemonError(
      `The daemon was not ready within ${core.readyTimeout} s and was stopped (log: ${core.logFile})`,
    );
  }
  // The daemon side may be the payload: its text reaches a terminal.
  if (outcome !== null) throw new DaemonError(oneLine(outcome.text));
  throw new DaemonError(
    `The daemon exited before it was ready (log: ${core.logFile})`,
  );
}

/**
 * Lock the pidfile for a new daemon, or learn which one already runs.
 * A daemon that holds the lock but has not written its pid yet is waited
 * for, so racing `start`s all report the one that won.
 */
async function lockForStart(
  libc: Libc,
  path: string,
  readyTimeout: number,
): Promise<Pidfile | StartResult> {
  const deadline = performance.now() + readyTimeout * 1000;
  for (;;) {
    try {
      return Pidfile.acquire(libc, path);
    } catch (err) {
      if (!(err instanceof PidfileLockedError)) throw err;
    }
    const st = inspectPidfile(libc, path);
    if (st.state === "running") {
      return { outcome: "already-running", pid: st.pid };
    }
    if (performance.now() > deadline) {
      return { outcome: "already-running", pid: undefined };
    }
    // Locked but no pid yet (a daemon is starting), or the lock was just
    // released: look again shortly.
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}
