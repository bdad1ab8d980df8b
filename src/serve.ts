/**
 * Running the payload, detached or in the foreground: the daemon(7) steps in
 * one fixed order, readiness, signals, reload and exit.
 *
 * @module
 */
import type { Libc } from "../ffi/mod.ts";
import type { DaemonContext, DaemonDefinition } from "./define.ts";
import { catchUncaught, DaemonError } from "./errors.ts";
import { setupLogging } from "./log.ts";
import { DroppedRecords } from "./dropped.ts";
import { FACILITIES } from "./syslog.ts";
import { redirectToLogFile, UNCHANGED_ID } from "./logfile.ts";
import type { CoreOptions, OptionSpecs, OptionValues } from "./options.ts";
import { inspectPidfile, Pidfile, PidfileLockedError } from "./pidfile.ts";
import { LIFELINE_FD, READY_FD } from "./stage.ts";
import {
  type DaemonState,
  PublishedState,
  removeSideFiles,
  writeLaunchRecord,
} from "./state.ts";
import { sendLine } from "./readiness.ts";
import { clearedEnv, dropPrivileges, type Identity } from "./privileges.ts";
import { SERVICE_ENV, ServiceManager } from "./notify.ts";
import { describeLogTo } from "./resolve.ts";
import { oneLine } from "./text.ts";
import { leavePrivateDenoDir, type PrivateDenoDir } from "./denodir.ts";

/** How the payload is being run. */
export type ServeMode =
  & (
    /** Detached by `start`: the pidfile is locked on an inherited descriptor. */
    | { detached: true; pidfile: Pidfile; supervisor?: undefined }
    /** Detached under the supervisor of `start --restart`, which holds the pidfile. */
    | { detached: true; pidfile?: undefined; supervisor: Supervisor }
    /** In the foreground under `run`. */
    | { detached: false }
  )
  & {
    /** Who to become after `prepare`, if anyone. */
    identity?: Identity;
    /** The private `DENO_DIR` the daemon booted with, if any. */
    denoDir?: PrivateDenoDir;
  };

/** The supervisor a daemon runs under. */
export interface Supervisor {
  /** Its pid: this process's parent. */
  pid: number;
  /** The pidfile it holds; the daemon's state file sits beside it. */
  pidfile: string;
}

/**
 * Resolve once the supervisor is gone: its end of the lifeline pipe closes
 * when its last thread has exited, however it ended (even SIGKILL), so the
 * daemon learns it exactly once, never runs on orphaned, and still stops
 * gracefully. The wait is a read blocked in the kernel: no wake-ups.
 */
async function supervisorGone(libc: Libc): Promise<void> {
  libc.setCloexec(LIFELINE_FD, true);
  try {
    // The supervisor never writes: the read returns at end of file.
    while ((await libc.readAsync(LIFELINE_FD, 64)).length > 0);
  } catch {
    // A failed read means no supervisor either.
  }
}

/** One-line text of any thrown value, for the readiness pipe. */
function errorText(err: unknown): string {
  if (err instanceof Error) return oneLine(err.message) || err.name;
  return oneLine(String(err));
}

/**
 * Run a daemon's payload until it stops, then exit the process.
 *
 * @param libc The OS interface.
 * @param def The daemon.
 * @param core Resolved core options.
 * @param options The daemon's own validated options.
 * @param mode Detached (with its pidfile) or foreground.
 */
export async function serve(
  libc: Libc,
  def: DaemonDefinition,
  core: CoreOptions,
  options: Record<string, unknown>,
  mode: ServeMode,
): Promise<never> {
  const startedAt = performance.now();
  const detached = mode.detached;
  if (core.notifyFd !== undefined && !isPipe(libc, core.notifyFd)) {
    // Not inherited from a supervisor (which would then wait forever), or
    // one of the runtime's own descriptors, which must not be written to.
    throw new DaemonError(
      `Cannot use --notify-fd ${core.notifyFd}: it is not an open pipe`,
    );
  }
  // The steps, in order: umask; logging; hardening; the service manager's
  // variables; working directory; pidfile and state file; signal handlers;
  // prepare() with full privileges; dropping privileges; main().
  libc.umask(core.umask);
  const dropped = new DroppedRecords();
  const log = setupLogging({
    dropped,
    name: def.name,
    level: core.logLevel,
    format: core.logFormat,
    // Under `run`: journald's stream when JOURNAL_STREAM names our stderr;
    // colour only on a terminal, and never with NO_COLOR.
    journald: !detached &&
      isJournalStream(libc, Deno.env.get("JOURNAL_STREAM")),
    color: !detached && Deno.stderr.isTerminal() && !Deno.env.get("NO_COLOR"),
    syslog: core.logTo !== "syslog" ? undefined : {
      libc,
      socket: core.syslogSocket,
      facility: FACILITIES[core.syslog ?? "daemon"],
    },
  });
  // Hardening first: no core files (they would hold secrets), and no
  // privilege gained through exec. Detached, the session leader already set
  // no-new-privs for every thread; here it covers `run`'s main thread.
  if (core.noCoreDumps) libc.disableCoreDumps();
  if (core.noNewPrivs) libc.setNoNewPrivs();
  // The service manager's variables are read once and removed, so that the
  // payload's children do not talk to the manager by accident.
  const notifyFd = core.notifyFd;
  if (notifyFd !== undefined) libc.setCloexec(notifyFd, true);
  const manager = ServiceManager.fromEnvironment(
    libc,
    (name) => Deno.env.get(name),
    notifyFd,
    log,
  );
  for (const name of SERVICE_ENV) Deno.env.delete(name);
  manager.startWatchdog();
  if (!detached && core.clearEnv) {
    const keep = clearedEnv(Deno.env.toObject(), def.env ?? []);
    for (const name of Object.keys(Deno.env.toObject())) {
      if (!(name in keep)) Deno.env.delete(name);
    }
  }
  let readyFd: number | null = detached ? READY_FD : null;
  if (readyFd !== null) libc.setCloexec(readyFd, true);
  let pidfile: Pidfile | undefined;
  let state: PublishedState<DaemonState> | undefined;

  /** Report a start-up failure to `start` (or stderr) and exit 1. */
  const failStart = (err: unknown): never => {
    log.fatal("Start-up failed: {error}", { error: err });
    manager.failed(err);
    if (readyFd !== null) sendLine(libc, readyFd, "ERROR", errorText(err));
    state?.close();
    pidfile?.remove();
    Deno.exit(1);
  };

  try {
    libc.chdir(core.chdir);
    if (mode.detached) {
      pidfile = mode.pidfile;
    } else if (core.pidfile !== undefined) {
      pidfile = acquireForeground(libc, core.pidfile, mode.identity);
    }
  } catch (err) {
    failStart(err);
  }

  const supervisor = mode.detached ? mode.supervisor : undefined;
  const stateNow: DaemonState = {
    pid: Deno.pid,
    ...(supervisor ? { supervisor: supervisor.pid } : {}),
    reloadsRequested: 0,
    reloadsDone: 0,
    lastReloadError: null,
    logsTo: describeLogTo(core),
  };
  // Published in a memfd of our own, read by the control commands through
  // /proc: after the drop, no descriptor to a file root created is left.
  if (pidfile !== undefined || supervisor !== undefined) {
    try {
      state = new PublishedState(libc, stateNow);
    } catch (err) {
      failStart(err);
    }
  }
  dropped.publishEvery(1000, (n) => {
    stateNow.droppedRecords = n;
    try {
      state?.write(stateNow);
    } catch {
      // The next drop tries again.
    }
  });

  const controller = new AbortController();
  let isReady = false;
  let exiting = false;
  let stopSignal: string | null = null;
  let stopStarted = 0;
  let stopTimer: ReturnType<typeof setTimeout> | undefined;

  /** Remove the pidfile (still locked) and exit. */
  const finish = (code: number, why: string): never => {
    exiting = true;
    if (stopTimer !== undefined) clearTimeout(stopTimer);
    const ms = Math.round(performance.now() - stopStarted);
    log.info("Stopped ({why}, exit {code}, {ms} ms after the stop request)", {
      why,
      code,
      ms: stopSignal === null ? 0 : ms,
    });
    state?.close();
    if (pidfile?.isCurrent()) removeSideFiles(libc, pidfile.path);
    if (pidfile !== undefined && !pidfile.remove()) {
      log.info("Pidfile {path} left for stop to remove (no permission)", {
        path: pidfile.path,
      });
    }
    Deno.exit(code);
  };

  const fatal = (err: unknown): void => {
    if (exiting) return;
    if (!isReady) failStart(err);
    log.fatal("Uncaught error: {error}", { error: err });
    finish(1, "uncaught error");
  };
  // A payload that calls Deno.exit() itself still leaves no pidfile behind.
  globalThis.addEventListener("unload", () => {
    state?.close();
    pidfile?.remove();
  });
  catchUncaught(fatal);

  /** A stop request: `why` is a signal name, or the supervisor's end. */
  const requestStop = (why: string) => {
    if (exiting) return;
    if (stopSignal !== null) {
      log.warning("Second {signal}: exiting now", { signal: why });
      finish(1, `second ${why}`);
    }
    stopSignal = why;
    stopStarted = performance.now();
    log.info("Stopping on {signal}", { signal: why });
    manager.stopping();
    stopTimer = setTimeout(() => {
      log.error("Did not stop within {seconds} s: exiting", {
        seconds: core.stopTimeout,
      });
      finish(1, "stop timeout");
    }, core.stopTimeout * 1000);
    controller.abort(new DaemonError(`Stopped by ${why}`));
  };
  Deno.addSignalListener("SIGTERM", () => requestStop("SIGTERM"));
  Deno.addSignalListener("SIGINT", () => requestStop("SIGINT"));
  if (supervisor !== undefined) {
    void supervisorGone(libc).then(() => {
      log.warning("The supervisor (pid {pid}) is gone", {
        pid: supervisor.pid,
      });
      requestStop("the supervisor's exit");
    });
  }

  const reloadHandlers: (() => void | Promise<void>)[] = [];
  const ctx: DaemonContext = {
    name: def.name,
    version: def.version,
    options: options as OptionValues<OptionSpecs>,
    core,
    detached,
    signal: controller.signal,
    log,
    ready() {
      if (isReady || exiting) return;
      if (pidfile !== undefined && !pidfile.isCurrent()) {
        failStart(
          new DaemonError(
            `Lost the pidfile: ${
              JSON.stringify(pidfile.path)
            } was removed or replaced`,
          ),
        );
      }
      isReady = true;
      log.info("Ready (pid {pid}, {ms} ms after launch)", {
        pid: Deno.pid,
        ms: Math.round(performance.now()),
      });
      manager.ready(detached);
      if (readyFd !== null) {
        sendLine(libc, readyFd, "READY", String(Deno.pid));
        libc.close(readyFd);
        readyFd = null;
      }
    },
    status(text) {
      manager.status(text);
    },
    extendTimeout(seconds) {
      manager.extendTimeout(seconds);
    },
    onReload(handler) {
      reloadHandlers.push(handler);
    },
  };

  // Reloads run one at a time; a SIGHUP during one asks for another after it,
  // so every signal is covered by a reload that started after it arrived.
  let reloading = false;
  const runReloads = async () => {
    if (reloading) return;
    reloading = true;
    while (stateNow.reloadsDone < stateNow.reloadsRequested && !exiting) {
      const covering = stateNow.reloadsRequested;
      let error: string | null = null;
      manager.reloading();
      try {
        if (detached) redirectToLogFile(libc, core.logFile);
        log.info("Reloading");
        await def.reload?.(ctx);
        for (const handler of [...reloadHandlers]) await handler();
        log.info("Reloaded");
      } catch (err) {
        error = errorText(err);
        log.error("Reload failed: {error}", { error: err });
      }
      stateNow.reloadsDone = covering;
      stateNow.lastReloadError = error;
      state?.write(stateNow);
      // The daemon runs on after a failed reload too: it is ready again.
      if (error !== null) manager.status(`Reload failed: ${error}`);
      manager.ready(detached);
    }
    reloading = false;
  };
  Deno.addSignalListener("SIGHUP", () => {
    stateNow.reloadsRequested++;
    state?.write(stateNow);
    void runReloads();
  });

  log.info(
    "Starting {name} {version} (pid {pid}, uid {uid}, {mode}, pidfile {pidfile}, logs to {logsTo}, user after prepare {user})",
    {
      name: def.name,
      version: def.version,
      pid: Deno.pid,
      uid: libc.geteuid(),
      mode: detached ? "detached" : "foreground",
      pidfile: pidfile?.path ??
        (supervisor
          ? `${supervisor.pidfile} (held by supervisor pid ${supervisor.pid})`
          : "none"),
      logsTo: stateNow.logsTo,
      user: core.user ?? "unchanged",
      umask: core.umask.toString(8).padStart(3, "0"),
      chdir: core.chdir,
      startup: Math.round(performance.now() - startedAt),
    },
  );

  try {
    await def.prepare?.(ctx);
    leavePrivateDenoDir(libc, mode.denoDir, mode.identity);
    if (mode.identity !== undefined) {
      // The daemon keeps writing its state: as a file of its own user's.
      state?.handTo(mode.identity.user?.uid ?? UNCHANGED_ID, mode.identity.gid);
      dropPrivileges(libc, mode.identity);
      log.info("Running as uid {uid}, gid {gid}", {
        uid: mode.identity.user?.uid ?? libc.geteuid(),
        gid: mode.identity.gid,
      });
    } else if (libc.geteuid() === 0) {
      log.warning(
        "Running as root: pass --user to drop privileges after prepare",
      );
    }
    await def.main(ctx);
  } catch (err) {
    if (!isReady) failStart(err);
    log.fatal("The daemon failed: {error}", { error: err });
    finish(1, "error in main");
  }
  if (!isReady && stopSignal === null) {
    failStart(new DaemonError("The daemon returned before it was ready"));
  }
  if (!isReady && readyFd !== null) {
    sendLine(
      libc,
      readyFd,
      "ERROR",
      `Stopped by ${stopSignal} before it was ready`,
    );
  }
  return finish(0, stopSignal ?? "main returned");
}

/** Whether `JOURNAL_STREAM` ("dev:ino") names the file on our stderr. */
function isJournalStream(libc: Libc, value: string | undefined): boolean {
  const m = value?.match(/^(\d+):(\d+)$/);
  if (!m) return false;
  try {
    const st = libc.stat(2);
    return st.devNumber === BigInt(m[1]) && st.ino === BigInt(m[2]);
  } catch {
    return false;
  }
}

/** Whether `fd` is an open pipe, as supervisors pass for readiness. */
function isPipe(libc: Libc, fd: number): boolean {
  try {
    return libc.stat(fd).type === "fifo";
  } catch {
    return false;
  }
}

/**
 * Take the pidfile under `run`, write our pid and the launch record, and
 * keep only the lock; "locked" becomes a clear message.
 */
function acquireForeground(
  libc: Libc,
  path: string,
  identity: Identity | undefined,
): Pidfile {
  let pidfile: Pidfile;
  try {
    pidfile = Pidfile.acquire(libc, path);
  } catch (err) {
    if (!(err instanceof PidfileLockedError)) throw err;
    const st = inspectPidfile(libc, path);
    const pid = st.state === "running" ? ` (pid ${st.pid})` : "";
    throw new DaemonError(`Already running${pid}`);
  }
  try {
    removeSideFiles(libc, path);
    const euid = libc.geteuid();
    writeLaunchRecord(libc, path, {
      exe: Deno.execPath(),
      uids: [...new Set([euid, identity?.user?.uid ?? euid])],
      supervised: false,
    });
    pidfile.write(Deno.pid);
    pidfile.closeWriter();
    return pidfile;
  } catch (err) {
    pidfile.remove();
    throw err;
  }
}
