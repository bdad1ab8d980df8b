/**
 * `start`: everything checkable is checked here, in the caller's terminal;
 * then the daemon is created with two `posix_spawn`s (a session leader that
 * spawns the daemon and exits, daemon(7) step 6) and the caller waits on a
 * pipe until the daemon says it is ready or why it failed.
 *
 * @module
 */
import type { ExitStatus, Libc } from "../ffi/mod.ts";
import { DaemonError, Exit } from "./errors.ts";
import { type LogOwner, openLogFile, UNCHANGED_ID } from "./logfile.ts";
import type { CoreOptions } from "./options.ts";
import { inspectPidfile, Pidfile, PidfileLockedError } from "./pidfile.ts";
import { type ReadinessMessage, readMessages } from "./readiness.ts";
import {
  spawnStage,
  SUPERVISOR_GRACE,
  type SupervisorConfig,
} from "./stage.ts";
import {
  ExitRecordFile,
  type LaunchRecord,
  readExitRecord,
  readLaunchRecord,
  readSupervisorState,
  type RecordedOptions,
  removeSideFiles,
  writeLaunchRecord,
} from "./state.ts";
import { FACILITIES } from "./syslog.ts";
import { pinChild, pinDaemon } from "./pin.ts";
import { collectExit, howItEnded, type Pinned, terminate } from "./process.ts";
import { clearedEnv, type Identity } from "./privileges.ts";
import {
  makePrivateDenoDir,
  type PrivateDenoDir,
  removePrivateDenoDir,
} from "./denodir.ts";
import { checkChdir, describeLogTo } from "./resolve.ts";
import { closeParent, openParent, withUserHint } from "./safe_open.ts";
import { oneLine } from "./text.ts";
import { after, sleep, type Timer, within } from "./timer.ts";
import { pidfilePolicy } from "./pidfile.ts";

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

/**
 * The environment a session leader is spawned with: the service manager's
 * variables handed over, and with `--clear-env` only what the daemon may
 * see (`undefined`: this process's own).
 */
export function leaderEnv(
  core: CoreOptions,
  declaredEnv: readonly string[] = [],
): Record<string, string> | undefined {
  handOverServiceEnv();
  return core.clearEnv
    ? clearedEnv(Deno.env.toObject(), declaredEnv)
    : undefined;
}

/** Who the log file is handed to, for a daemon that becomes `identity`. */
function logOwner(identity: Identity | undefined): LogOwner | undefined {
  return identity === undefined
    ? undefined
    : { uid: identity.user?.uid ?? UNCHANGED_ID, gid: identity.gid };
}

/** What `start` reports. */
export type StartResult =
  /** `pid` is the daemon's; `supervisor` the supervisor's, under `--restart`. */
  { outcome: "started" | "already-running"; pid: number; supervisor?: number };

/** The supervisor's settings, from the resolved options. */
function supervisorConfig(
  name: string,
  core: CoreOptions,
  identity: Identity | undefined,
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
      owner: logOwner(identity),
    },
  };
}

/**
 * Create a default private directory and any missing parent, each mode
 * 0700 whatever the umask.
 */
function ensurePrivateDir(dir: string): void {
  let at = "";
  for (const part of dir.split("/").filter((p) => p !== "")) {
    at += `/${part}`;
    try {
      Deno.mkdirSync(at, { mode: 0o700 });
      Deno.chmodSync(at, 0o700);
    } catch (err) {
      if (err instanceof Deno.errors.AlreadyExists) continue;
      throw new DaemonError(
        `Cannot create directory ${JSON.stringify(at)}: ${
          (err as Error).message
        }`,
        err instanceof Deno.errors.PermissionDenied
          ? Exit.PRIVILEGE
          : Exit.FAILURE,
        { cause: err },
      );
    }
  }
}

/** What {@linkcode start} needs besides the core options. */
export interface StartOptions {
  /** The daemon's name, for the supervisor's records. */
  name: string;
  /** The daemon's own options, validated: the daemon takes them as they are. */
  options: Record<string, unknown>;
  /** A default directory to create first (mode 0700), if any. */
  privateDir?: string;
  /** Variables the daemon declares, kept by `--clear-env`. */
  declaredEnv?: readonly string[];
  /** Who the daemon becomes after `prepare`: the log file is handed to it. */
  identity?: Identity;
  /** This program's command line, to run it again (see {@linkcode LaunchRecord}). */
  program?: string[];
  /** The options given, for the launch record (see {@linkcode LaunchRecord}). */
  given?: RecordedOptions;
}

/**
 * Check everything `start` can check before anything runs or stops: the
 * supervision settings, the working directory, where the pidfile is (only
 * root or the caller may change what its path names) and the log file
 * (created if missing, and handed to the daemon's user).
 *
 * @throws {DaemonError|UsageError} With a worded reason.
 */
export function checkStart(
  libc: Libc,
  core: CoreOptions & { pidfile: string },
  options: StartOptions,
): void {
  libc.close(openStart(libc, core, options).logFd);
}

/**
 * {@linkcode checkStart}, keeping what it opened: the supervision settings
 * and the log file's descriptor, which becomes the daemon's output.
 */
export function openStart(
  libc: Libc,
  core: CoreOptions & { pidfile: string },
  options: StartOptions,
): { supervise: SupervisorConfig | undefined; logFd: number } {
  const supervise = supervisorConfig(options.name, core, options.identity);
  if (options.privateDir !== undefined) ensurePrivateDir(options.privateDir);
  checkChdir(core.chdir);
  closeParent(
    libc,
    openParent(libc, core.pidfile, pidfilePolicy(libc.geteuid())),
  );
  const logFd = openStartLog(libc, core.logFile, logOwner(options.identity));
  return { supervise, logFd };
}

/**
 * The log file for `start`. Root refusing one that another user owns says
 * the way out, as `logs` does.
 */
function openStartLog(
  libc: Libc,
  path: string,
  owner: LogOwner | undefined,
): number {
  try {
    return openLogFile(libc, path, owner);
  } catch (err) {
    if (libc.geteuid() !== 0) throw err;
    throw withUserHint(libc, path, [0], err);
  }
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
  const { supervise, logFd } = openStart(libc, core, options);
  try {
    return await launch(libc, core, options, supervise, logFd);
  } finally {
    libc.close(logFd);
  }
}

/** {@linkcode start} once checked: lock, record, spawn, await readiness. */
async function launch(
  libc: Libc,
  core: CoreOptions & { pidfile: string },
  options: StartOptions,
  supervise: SupervisorConfig | undefined,
  logFd: number,
): Promise<StartResult> {
  const pidfile = await lockForStart(libc, core.pidfile, core.readyTimeout);
  if ("outcome" in pidfile) return pidfile;
  // Whoever held the pidfile before is gone: so are its side files.
  removeSideFiles(libc, core.pidfile);
  /**
   * What was spawned, each pinned while it was known to be ours: the
   * leader (our own child), then the process the pidfile names (the daemon,
   * or its supervisor), once the kernel shows it holding our lock.
   */
  const spawned: Pinned[] = [];
  /**
   * Under `deno run --user`, the daemon's own Deno caches (denodir.ts): it
   * removes them before it drops privileges, we do if it ended before.
   */
  let denoDir: PrivateDenoDir | null = null;
  /** Stop whatever was spawned (leader and daemon) and remove the pidfile. */
  const cleanup = async (): Promise<void> => {
    const wait = core.stopTimeout + (supervise ? SUPERVISOR_GRACE : 0);
    await Promise.all(
      spawned.map((p) => terminate(libc, p, wait).catch(() => {})),
    );
    if (denoDir !== null) removePrivateDenoDir(denoDir.dir);
    // A daemon that failed to start said why: `status` says it too.
    removeSideFiles(libc, core.pidfile, {
      keepExit: readExitRecord(libc, core.pidfile)?.how === "failed",
    });
    pidfile.remove();
  };
  let readEnd: number;
  try {
    writeLaunchRecord(
      libc,
      core.pidfile,
      launchRecord(libc, options, supervise),
    );
    const exit = ExitRecordFile.create(libc, core.pidfile);
    try {
      const env = leaderEnv(core, options.declaredEnv);
      if (supervise === undefined && options.identity !== undefined) {
        denoDir = makePrivateDenoDir(libc, env);
      }
      readEnd = spawnLeader(
        libc,
        { core, options, supervise, logFd, exitFd: exit.fd, env, denoDir },
        pidfile,
        spawned,
      );
    } finally {
      exit.close();
    }
  } catch (err) {
    await cleanup();
    throw err;
  }
  // Only the leader writes the pid from now on.
  pidfile.closeWriter();
  const spawnedPid = pinLeadersChild(libc, pidfile, spawned);
  const wait = await awaitReadiness(libc, readEnd, core.readyTimeout);
  // The leader is long done by now; a wedged one is stopped by the clean-up.
  const pid = await within(spawnedPid, 5000);
  const { outcome } = wait;
  if (
    outcome !== null && typeof outcome === "object" &&
    outcome.kind === "READY" && pid !== undefined
  ) {
    // The daemon holds the lock on its own descriptor; ours is released.
    pidfile.close();
    for (const p of spawned) libc.close(p.pidfd);
    wait.close();
    // A supervisor (root, like us) reports its daemon's pid; the pidfile
    // names the supervisor.
    return supervise
      ? { outcome: "started", pid: Number(outcome.text), supervisor: pid }
      : { outcome: "started", pid };
  }
  // Worded first: the log's last lines are what it said while starting.
  const why = failure(libc, wait, core, logFd, supervise !== undefined, {
    ended: outcome === null && !supervise
      ? await endOf(libc, spawned[1])
      : undefined,
  });
  await cleanup();
  // With the daemon side gone the reader sees end of file and finishes.
  await within(wait.finished, 1000);
  wait.close();
  const code = typeof outcome === "object" && outcome?.kind === "ERROR"
    ? wait.code
    : Exit.FAILURE;
  throw new DaemonError(why, code);
}

/** What may hold the pidfile: this program, as the caller or the user it drops to. */
function launchRecord(
  libc: Libc,
  options: StartOptions,
  supervise: SupervisorConfig | undefined,
): LaunchRecord {
  const euid = libc.geteuid();
  // The supervisor keeps the caller's ids; a daemon drops to its user.
  const dropsTo = supervise ? euid : (options.identity?.user?.uid ?? euid);
  return {
    exe: Deno.execPath(),
    uids: [...new Set([euid, dropsTo])],
    supervised: supervise !== undefined,
    foreground: false,
    program: options.program ?? [Deno.execPath()],
    options: options.given ?? {},
    startedAt: Date.now(),
  };
}

/**
 * Spawn the session leader with the pidfile (locked, and writable for it
 * alone), the log file (opened and checked by {@linkcode openStart}) as its
 * output and the write end of a new readiness pipe, and pin it into
 * `spawned`.
 *
 * @returns The read end of the readiness pipe.
 */
function spawnLeader(
  libc: Libc,
  { core, options, supervise, logFd, exitFd, env, denoDir }: {
    core: CoreOptions & { pidfile: string };
    options: StartOptions;
    supervise: SupervisorConfig | undefined;
    logFd: number;
    exitFd: number;
    /** The environment to spawn with ({@linkcode leaderEnv}). */
    env: Record<string, string> | undefined;
    denoDir: PrivateDenoDir | null;
  },
  pidfile: Pidfile,
  spawned: Pinned[],
): number {
  const { identity } = options;
  // Once the leader ends, the daemon (or supervisor) is reparented to us,
  // not to init: unreaped, its pid stays its own while we watch it.
  libc.becomeSubreaper();
  const [r, w] = libc.pipe();
  try {
    const leader = spawnStage(
      libc,
      {
        stage: "leader",
        pidfile: core.pidfile,
        noNewPrivs: core.noNewPrivs,
        daemon: { core, options: options.options, identity: identity ?? null },
        supervise: supervise ?? null,
        denoDir,
      },
      {
        stdio: { out: logFd },
        readyFd: w,
        pidfileFd: pidfile.fd,
        pidfileWriteFd: pidfile.writer!,
        exitFd,
        setsid: true,
        env,
      },
    );
    // Our own child, not reaped before we exit: its pid cannot be reused.
    spawned.push({ pid: leader, pidfd: libc.pidfdOpen(leader) });
    return r;
  } catch (err) {
    libc.close(r);
    throw err;
  } finally {
    libc.close(w);
  }
}

/** How waiting for readiness ended, and the reader to close afterwards. */
export interface Readiness {
  /** A message, `null` at end of file, or why the wait was cut short. */
  outcome: ReadinessMessage | null | "timeout" | "interrupted";
  /** The exit code of a failure the daemon reported: 1, or 4. */
  code: number;
  /** How long `main` has run, if the daemon said it started. */
  mainMs: number | undefined;
  /** Settles once the reader has seen the end of the pipe. */
  finished: Promise<unknown>;
  /** Close the read end, unless a read still blocked on it holds it. */
  close(): void;
}

/**
 * Wait for the first readiness message, the end of the pipe, the ready
 * timeout, or Ctrl-C (or SIGTERM), which stops the half-started daemon too.
 */
export async function awaitReadiness(
  libc: Libc,
  readEnd: number,
  readyTimeout: number,
): Promise<Readiness> {
  let interrupt = () => {};
  const interrupted = new Promise<"interrupted">((resolve) => {
    interrupt = () => resolve("interrupted");
  });
  Deno.addSignalListener("SIGINT", interrupt);
  Deno.addSignalListener("SIGTERM", interrupt);
  let timer: Timer | undefined;
  const timeout = new Promise<"timeout">((resolve) => {
    timer = after(readyTimeout * 1000, () => resolve("timeout"));
  });
  let reading = true;
  let mainAt: number | undefined;
  let code: number = Exit.FAILURE;
  const messages = (async () => {
    try {
      for await (const msg of readMessages(libc, readEnd)) {
        if (msg.kind === "MAIN") mainAt ??= performance.now();
        // Only codes a start-up failure may have: the daemon is not trusted.
        else if (msg.kind === "EXIT") {
          code = msg.text === String(Exit.PRIVILEGE)
            ? Exit.PRIVILEGE
            : Exit.FAILURE;
        } else return msg;
      }
      return null;
    } finally {
      reading = false;
    }
  })();
  const outcome = await Promise.race([messages, timeout, interrupted]);
  timer?.cancel();
  Deno.removeSignalListener("SIGINT", interrupt);
  Deno.removeSignalListener("SIGTERM", interrupt);
  return {
    outcome,
    code,
    mainMs: mainAt === undefined ? undefined : performance.now() - mainAt,
    finished: messages,
    // A read still blocked on another thread keeps the descriptor until the
    // daemon side closes; closing it under that read could hit a reused
    // number.
    close: () => {
      if (!reading) libc.close(readEnd);
    },
  };
}

/** Why a start failed, in words. */
export function failure(
  libc: Libc,
  { outcome, mainMs }: Readiness,
  core: CoreOptions,
  logFd: number,
  supervised: boolean,
  { ended }: { ended?: ExitStatus | null | "running" } = {},
): string {
  if (outcome === "interrupted") {
    return "Interrupted: the starting daemon was stopped";
  }
  if (outcome === "timeout") {
    const running = supervised && mainMs === undefined
      // The supervisor passes on only READY and ERROR.
      ? "ctx.ready() was not called"
      : mainMs === undefined
      ? "main() was never called: the daemon was still starting (in prepare() or before)"
      : `main() had run for ${
        (mainMs / 1000).toFixed(1)
      } s without calling ctx.ready()`;
    return `The daemon was not ready within ${core.readyTimeout} s and was stopped: ${running}${
      logTail(libc, core, logFd)
    }`;
  }
  // The daemon side may be the payload: its text reaches a terminal.
  if (outcome !== null && outcome.kind === "ERROR") {
    return oneLine(outcome.text);
  }
  const how = ended === undefined
    ? "exited"
    : ended === "running"
    ? "closed its readiness pipe without a word (it was stopped)"
    : howItEnded(ended);
  return `The daemon ${how} before it was ready (log: ${core.logFile})`;
}

/**
 * How the daemon ended, once it closed the readiness pipe without a word:
 * it is our child (see {@linkcode pinLeadersChild}), so its status is ours
 * to collect. `"running"` when it still runs a moment later (a payload
 * that closed the pipe itself); `undefined` when it was not pinned.
 */
export async function endOf(
  libc: Libc,
  daemon: Pinned | undefined,
): Promise<ExitStatus | null | "running" | undefined> {
  if (daemon === undefined) return undefined;
  if (!await libc.pidfdWait(daemon.pidfd, 1000)) return "running";
  try {
    return await collectExit(libc, daemon.pidfd, 1000);
  } catch {
    return undefined; // not ours after all
  }
}

/** How many of the log's last lines a failed start shows, and from how many bytes. */
const TAIL_LINES = 5;
const TAIL_BYTES = 4096;

/**
 * The log's last lines, for a start that timed out: read through the
 * descriptor `start` opened and checked (never the path again, which the
 * daemon's user may have replaced since), at most the last few KiB, each
 * line made printable. Not `logs.ts`'s reader: that module (the follower,
 * journald, rotation) would load into every `start` for a rare message.
 */
function logTail(libc: Libc, core: CoreOptions, logFd: number): string {
  if (core.logTo === "syslog") return " (log: syslog)";
  const where = ` (log: ${core.logFile})`;
  let text: string;
  let cut = false;
  try {
    // The same open file, read-only, without blocking: the daemon's user
    // owns it and may hold a lease on it, which would keep a blocking open
    // waiting for the kernel's lease-break-time (45 s).
    const fd = libc.reopenReadOnly(logFd);
    try {
      const st = libc.stat(fd);
      if (st.type !== "file") return where;
      const from = Math.max(0, st.size - TAIL_BYTES);
      // One pread: a regular file gives all it has of a few KiB at once.
      text = new TextDecoder().decode(libc.readAt(fd, from, st.size - from));
      cut = from > 0;
    } finally {
      libc.close(fd);
    }
  } catch {
    return where;
  }
  const lines = text.split("\n");
  // The first may be cut; the last is empty after a final newline.
  if (cut) lines.shift();
  const last = lines.filter((l) => l.trim() !== "").slice(-TAIL_LINES);
  if (last.length === 0) return `${where}; the log is empty`;
  return `. Last lines of ${core.logFile}:\n${
    last.map((l) => `  ${oneLine(l, 300)}`).join("\n")
  }`;
}

/**
 * Wait for the session leader (`spawned[0]`) to end, then pin the process
 * the pidfile names (the leader wrote it, only the leader could), if the
 * kernel shows it to be our child (the leader's, reparented to us), and add
 * it to `spawned`.
 *
 * @returns Its pid, or `undefined` when there is none.
 */
async function pinLeadersChild(
  libc: Libc,
  pidfile: Pidfile,
  spawned: Pinned[],
): Promise<number | undefined> {
  await libc.pidfdWait(spawned[0].pidfd, Infinity);
  const pid = pidfile.read();
  if (pid === undefined) return undefined;
  // Not its lock: the payload may have dropped it, or died; either way it
  // is stopped (or its status collected) if the start fails.
  const pinned = pinChild(libc, libc.getpid(), pid);
  if (pinned !== null) spawned.push(pinned);
  return pid;
}

/**
 * Lock the pidfile for a new daemon, or learn which one already runs. A
 * daemon that holds the lock but has not written its pid yet is waited
 * for, and so is the first daemon of a starting supervisor, so that racing
 * `start`s all report the one that won. "Already running" is said only of
 * a process the kernel shows to be the daemon.
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
    if (inspectPidfile(libc, path).state === "running") {
      const daemon = await pinDaemon(libc, path, 0);
      if (daemon !== null) {
        try {
          const running = await alreadyRunning(libc, path, daemon, deadline);
          if (running !== null) return running;
        } finally {
          libc.close(daemon.pidfd);
        }
      }
    }
    if (performance.now() > deadline) {
      throw new DaemonError(
        `Pidfile ${
          JSON.stringify(path)
        } is locked, but no daemon became ready within ${readyTimeout} s`,
      );
    }
    // Locked but no pid yet (a daemon is starting), or the lock was just
    // released: look again shortly.
    await sleep(10);
  }
}

/**
 * What to report of a verified running daemon: under a supervisor, its
 * daemon once ready. `null` when the supervisor ended meanwhile.
 */
async function alreadyRunning(
  libc: Libc,
  path: string,
  daemon: Pinned,
  deadline: number,
): Promise<StartResult | null> {
  const supervised = readLaunchRecord(libc, path)?.supervised ?? false;
  for (;;) {
    const sup = readSupervisorState(libc, path, daemon.pid);
    if (!supervised) return { outcome: "already-running", pid: daemon.pid };
    if (sup !== null && sup.child !== null && sup.childReady) {
      return {
        outcome: "already-running",
        pid: sup.child,
        supervisor: daemon.pid,
      };
    }
    if (performance.now() > deadline) return null;
    if (await libc.pidfdWait(daemon.pidfd, 10)) return null;
  }
}
