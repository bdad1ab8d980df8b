/**
 * Running the payload, detached or in the foreground: the daemon(7) steps in
 * one fixed order, readiness, signals, reload and exit.
 *
 * @module
 */
import type { Logger } from "@logtape/logtape";
import type { Libc } from "../ffi/mod.ts";
import type { DaemonContext, DaemonDefinition } from "./definition.ts";
import { catchUncaught, DaemonError, Exit } from "./errors.ts";
import { nameBindErrors, startupFailure } from "./bind.ts";
import { setupLogging } from "./log.ts";
import { DroppedRecords } from "./dropped.ts";
import { FACILITIES } from "./syslog.ts";
import { redirectToLogFile, UNCHANGED_ID } from "./logfile.ts";
import type { CoreOptions, OptionSpecs, OptionValues } from "./options.ts";
import { inspectPidfile, Pidfile, PidfileLockedError } from "./pidfile.ts";
import {
  HANDLED_SIGNALS,
  inheritedExitFd,
  LIFELINE_FD,
  READY_FD,
  type UpgradeOf,
} from "./stage.ts";
import { NEWEST_SOCKET, serveShared } from "./listen.ts";
import {
  type DaemonState,
  type ExitRecord,
  ExitRecordFile,
  PublishedState,
  readSupervisorState,
  removeSideFiles,
  writeLaunchRecord,
} from "./state.ts";
import { sendError, sendLine } from "./readiness.ts";
import { clearedEnv, dropPrivileges, type Identity } from "./privileges.ts";
import { SERVICE_ENV, ServiceManager } from "./notify.ts";
import { describeLogTo } from "./resolve.ts";
import { oneLine } from "./text.ts";
import { leavePrivateDenoDir, type PrivateDenoDir } from "./denodir.ts";
import { after, everyUnreferenced, type Timer, unreferenced } from "./timer.ts";
import { LibcMissing } from "./without_libc.ts";

/** How the payload is being run. */
export type ServeMode =
  & (
    /** Detached by `start`: the pidfile is locked on an inherited descriptor. */
    | { detached: true; pidfile: Pidfile; supervisor?: undefined }
    /** Detached under the supervisor of `start --restart`, which holds the pidfile. */
    | { detached: true; pidfile?: undefined; supervisor: SupervisedBy }
    /** In the foreground under `run`. */
    | { detached: false }
  )
  & {
    /** Who to become after `prepare`, if anyone. */
    identity?: Identity;
    /** The private `DENO_DIR` the daemon booted with, if any. */
    denoDir?: PrivateDenoDir;
    /** Set for a generation that `upgrade` started. */
    upgrade?: UpgradeOf;
    /**
     * Called when `main` returned and the daemon runs on: the entry point's
     * `await` ends, so that the event loop can be seen to empty.
     */
    runsOn?: () => void;
  };

/** The supervisor a daemon runs under. */
export interface SupervisedBy {
  /** Its pid: this process's parent. */
  pid: number;
  /** The pidfile it holds; the daemon's state file sits beside it. */
  pidfile: string;
}

/**
 * Resolve once the supervisor is gone: its end of the lifeline pipe closes
 * when its last thread has exited, however it ended (even SIGKILL), so the
 * daemon learns it exactly once, never runs on orphaned, and still stops
 * gracefully. The pipe is waited on with poll(2) on another thread: no
 * wake-up while both run. That wait keeps the event loop alive (measured),
 * so once `main()` has returned (`released`), when the daemon must end as
 * soon as nothing else is left, the pipe is polled each second on an
 * unreferenced timer instead.
 */
function supervisorGone(libc: Libc, released: Promise<void>): Promise<void> {
  libc.setCloexec(LIFELINE_FD, true);
  const [wakeRead, wakeWrite] = libc.pipe();
  let open = true;
  void released.then(() => {
    if (open) libc.write(wakeWrite, new Uint8Array([1]));
  });
  return (async () => {
    const which = await libc.waitReadable([LIFELINE_FD, wakeRead], Infinity)
      // A failed poll means no supervisor either.
      .catch(() => 0);
    open = false;
    libc.close(wakeRead);
    libc.close(wakeWrite);
    if (which === 0) return;
    await new Promise<void>((resolve) => {
      const timer = everyUnreferenced(1000, async () => {
        try {
          // The supervisor never writes: readable means end of file.
          if (!(await libc.pidfdWait(LIFELINE_FD, 0))) return;
        } catch {
          // As above.
        }
        timer.cancel();
        resolve();
      });
    });
  })();
}

/** One-line text of any thrown value, for the readiness pipe. */
function errorText(err: unknown): string {
  if (err instanceof Error) return oneLine(err.message) || err.name;
  return oneLine(String(err));
}

/**
 * Run a daemon's payload until it stops.
 *
 * @param libc The OS interface.
 * @param def The daemon.
 * @param core Resolved core options.
 * @param options The daemon's own validated options.
 * @param mode Detached (with its pidfile) or foreground.
 * @returns The exit code, once the daemon is done (the CLI exits with it).
 */
export function serve(
  libc: Libc,
  def: DaemonDefinition,
  core: CoreOptions,
  options: Record<string, unknown>,
  mode: ServeMode,
): Promise<number> {
  if (core.notifyFd !== undefined && !isPipe(libc, core.notifyFd)) {
    // Not inherited from a supervisor (which would then wait forever), or
    // one of the runtime's own descriptors, which must not be written to.
    throw new DaemonError(
      `Cannot use --notify-fd ${core.notifyFd}: it is not an open pipe`,
    );
  }
  return new DaemonRun(libc, def, core, options, mode).run();
}

/** Thrown by a step to end the start-up: it was reported already. */
class StartFailed extends Error {}

/**
 * One run of the payload: the daemon(7) steps in their fixed order, then
 * the payload, until something resolves the exit code.
 */
class DaemonRun {
  readonly #libc: Libc;
  readonly #def: DaemonDefinition;
  readonly #core: CoreOptions;
  readonly #options: Record<string, unknown>;
  readonly #mode: ServeMode;
  readonly #startedAt = performance.now();
  readonly #exit = Promise.withResolvers<number>();
  readonly #dropped = new DroppedRecords();
  #exiting = false;
  #ready = false;
  /**
   * Whether the privileges are dropped (or there were none to drop). A
   * `ctx.ready()` from `prepare` is held until then: nobody is told the
   * daemon started while its drop may still fail, or while its private
   * `DENO_DIR` is still in `/run` with nobody left waiting to remove it.
   */
  #afterDrop = false;
  /** A `ctx.ready()` said before the drop, answered once it is done. */
  #readyHeld = false;
  #mainReturned = false;
  /** Settles when main() has returned and the daemon runs on. */
  readonly #released = Promise.withResolvers<void>();
  #log!: Logger;
  #manager!: ServiceManager;
  #readyFd: number | null = null;
  #pidfile: Pidfile | undefined;
  #state: PublishedState<DaemonState> | undefined;
  /** Where the daemon says how it ended (`x.exit`), when it has a pidfile. */
  #exitRecord: ExitRecordFile | undefined;
  readonly #published: DaemonState;
  #stop: StopRequests | undefined;
  /** What `ctx.onReload` registered, run in order after the definition's hook. */
  readonly #reloadHandlers: (() => void | Promise<void>)[] = [];
  #reloads!: Reloads;

  constructor(
    libc: Libc,
    def: DaemonDefinition,
    core: CoreOptions,
    options: Record<string, unknown>,
    mode: ServeMode,
  ) {
    this.#libc = libc;
    this.#def = def;
    this.#core = core;
    this.#options = options;
    this.#mode = mode;
    this.#published = {
      pid: Deno.pid,
      ...(mode.detached && mode.supervisor
        ? { supervisor: mode.supervisor.pid }
        : {}),
      reloadsRequested: 0,
      reloadsDone: 0,
      lastReloadError: null,
      logsTo: describeLogTo(core),
      generation: mode.upgrade?.generation ?? 1,
    };
  }

  /** The steps, then the payload; resolves with the exit code. */
  run(): Promise<number> {
    this.#setUmask();
    this.#setUpLogging();
    this.#harden();
    this.#takeServiceManagerVariables();
    nameBindErrors();
    void this.#daemonSteps().catch((err) => {
      try {
        this.#failed(err);
      } catch {
        // StartFailed: the exit code is resolved.
      }
    });
    return this.#exit.promise;
  }

  /** The steps that may fail start-up, then `prepare`, the drop and `main`. */
  async #daemonSteps(): Promise<void> {
    this.#enterWorkingDirectory();
    // Before the pidfile names this process, so that a stop sent as soon as
    // it does is a stop, not a death by the signal's default action. (The
    // handlers run at the first await, once the pidfile is taken.)
    this.#handleSignals();
    this.#takePidfileAndState();
    this.#logStart();
    await this.#prepare();
    // Asked to stop while it started: it ends here, main does not run, and
    // the files it was started with are removed with the privileges they
    // were made with (after the drop it may not be able to).
    const stopped = this.#stop!.requested;
    if (stopped !== null) this.#stoppedAsAsked(stopped);
    this.#dropPrivileges();
    this.#afterDrop = true;
    if (this.#readyHeld) this.#onReady();
    await this.#main();
  }

  #setUmask(): void {
    this.#libc.umask(this.#core.umask);
  }

  #setUpLogging(): void {
    const { libc, core } = { libc: this.#libc, core: this.#core };
    const detached = this.#mode.detached;
    this.#log = setupLogging({
      dropped: this.#dropped,
      name: this.#def.name,
      level: core.logLevel,
      format: core.logFormat,
      // Under `run`: journald's stream when JOURNAL_STREAM names our stderr;
      // colour only on a terminal, and never with NO_COLOR.
      journald: !detached &&
        isJournalStream(libc, Deno.env.get("JOURNAL_STREAM")),
      color: !detached && Deno.stderr.isTerminal() &&
        !Deno.env.get("NO_COLOR"),
      syslog: core.logTo !== "syslog" ? undefined : {
        libc,
        socket: core.syslogSocket,
        facility: FACILITIES[core.syslog ?? "daemon"],
      },
    });
  }

  /**
   * No core files (they would hold secrets), and no privilege gained
   * through exec. Detached, the session leader already set no-new-privs
   * for every thread; here it covers `run`'s main thread.
   */
  #harden(): void {
    try {
      if (this.#core.noCoreDumps) this.#libc.disableCoreDumps();
      if (this.#core.noNewPrivs) this.#libc.setNoNewPrivs();
    } catch (err) {
      if (!(err instanceof LibcMissing)) throw err;
      this.#log.warning(
        "Without FFI, core dumps and no-new-privs are as the service manager set them (LimitCORE=0, NoNewPrivileges=yes)",
      );
    }
  }

  /**
   * The service manager's variables are read once and removed, so that the
   * payload's children do not talk to the manager by accident; `run
   * --clear-env` leaves only what the daemon may see.
   */
  #takeServiceManagerVariables(): void {
    const { libc, core } = { libc: this.#libc, core: this.#core };
    const notifyFd = core.notifyFd;
    if (notifyFd !== undefined) libc.setCloexec(notifyFd, true);
    this.#manager = ServiceManager.fromEnvironment(
      libc,
      (name) => Deno.env.get(name),
      notifyFd,
      this.#log,
    );
    for (const name of SERVICE_ENV) Deno.env.delete(name);
    this.#manager.startWatchdog();
    if (!this.#mode.detached && core.clearEnv) {
      const keep = clearedEnv(Deno.env.toObject(), this.#def.env ?? []);
      for (const name of Object.keys(Deno.env.toObject())) {
        if (!(name in keep)) Deno.env.delete(name);
      }
    }
    if (this.#mode.detached) {
      this.#readyFd = READY_FD;
      libc.setCloexec(READY_FD, true);
    }
  }

  #enterWorkingDirectory(): void {
    this.#guard(() => this.#libc.chdir(this.#core.chdir));
  }

  /**
   * The pidfile (inherited locked when detached, taken under `run` when
   * asked for), and the state the control commands read: a memfd of our
   * own, read through /proc, so that after the drop no descriptor to a file
   * root created is left.
   */
  #takePidfileAndState(): void {
    const mode = this.#mode;
    this.#guard(() => {
      if (mode.detached) {
        this.#pidfile = mode.pidfile;
      } else if (this.#core.pidfile !== undefined) {
        this.#pidfile = acquireForeground(
          this.#libc,
          this.#core.pidfile,
          mode.identity,
        );
      }
      if (this.#pidfile !== undefined || (mode.detached && mode.supervisor)) {
        this.#state = new PublishedState(this.#libc, this.#published);
      }
      this.#takeExitRecord();
    });
    this.#dropped.publishEvery(1000, (n) => {
      this.#published.droppedRecords = n;
      this.#publish();
    });
  }

  /**
   * The exit record: inherited from `start` (or the supervisor), or, under
   * `run --pidfile`, created beside the pidfile before the drop.
   */
  #takeExitRecord(): void {
    const { libc, mode } = { libc: this.#libc, mode: this.#mode };
    if (mode.detached) {
      const fd = inheritedExitFd(libc);
      if (fd !== undefined) this.#exitRecord = new ExitRecordFile(libc, fd);
    } else if (this.#pidfile !== undefined) {
      this.#exitRecord = ExitRecordFile.create(libc, this.#pidfile.path);
    }
    this.#recordExit({ how: "running", detail: "", code: null });
  }

  /**
   * Say in the exit record how the daemon ends (or that it runs). A
   * generation `upgrade` started shares the record with the one it
   * replaces: until it is ready, the record stays that one's (a failed
   * upgrade is reported by `upgrade`).
   */
  #recordExit(end: Pick<ExitRecord, "how" | "detail" | "code">): void {
    if (this.#mode.upgrade !== undefined && !this.#ready) return;
    this.#exitRecord?.write({ pid: Deno.pid, ...end, at: Date.now() });
  }

  /** Rewrite the published state; a failure only delays what `status` shows. */
  #publish(): void {
    try {
      this.#state?.write(this.#published);
    } catch {
      // The next change tries again.
    }
  }

  #handleSignals(): void {
    this.#stop = new StopRequests(
      this.#log,
      this.#manager,
      this.#core.stopTimeout,
      (code, why) => this.#finish(code, why),
      () => this.#mainReturned,
    );
    const stop = this.#stop!;
    // A payload that calls Deno.exit() itself still leaves no pidfile behind.
    globalThis.addEventListener("unload", () => {
      if (!this.#exiting) {
        this.#recordExit({
          how: "exited",
          detail: "Deno.exit() in the payload",
          code: Deno.exitCode,
        });
      }
      this.#state?.close();
      this.#leavePidfile();
    });
    catchUncaught((err) => this.#uncaught(err));
    // Signal listeners and denod's own timers do not keep the event loop
    // alive (measured): this fires when the payload has nothing left.
    globalThis.addEventListener("beforeunload", () => this.#nothingLeft());
    Deno.addSignalListener("SIGTERM", () => stop.request("SIGTERM"));
    Deno.addSignalListener("SIGINT", () => stop.request("SIGINT"));
    const supervisor = this.#mode.detached ? this.#mode.supervisor : undefined;
    if (supervisor !== undefined) {
      void supervisorGone(this.#libc, this.#released.promise).then(() => {
        this.#log.warning("The supervisor (pid {pid}) is gone", {
          pid: supervisor.pid,
        });
        stop.request(SUPERVISOR_GONE);
      });
    }
    this.#reloads = new Reloads(this.#published, async () => {
      if (this.#mode.detached) {
        redirectToLogFile(this.#libc, this.#core.logFile);
      }
      this.#log.info("Reloading");
      await this.#def.reload?.(this.#ctx);
      for (const handler of [...this.#reloadHandlers]) await handler();
      this.#log.info("Reloaded");
    }, {
      log: this.#log,
      manager: this.#manager,
      detached: this.#mode.detached,
      publish: () => this.#publish(),
      exiting: () => this.#exiting,
      ready: () => this.#ready,
    });
    Deno.addSignalListener("SIGHUP", () => this.#reloads.request());
    // Spawned with them blocked (stage.ts): a stop sent meanwhile runs now.
    if (this.#mode.detached) this.#libc.unblockSignals(HANDLED_SIGNALS);
  }

  #logStart(): void {
    const { core, def } = { core: this.#core, def: this.#def };
    const supervisor = this.#mode.detached ? this.#mode.supervisor : undefined;
    this.#log.info(
      "Starting {name} {version} (pid {pid}, uid {uid}, {mode}, pidfile {pidfile}, logs to {logsTo}, user after prepare {user})",
      {
        name: def.name,
        version: def.version,
        pid: Deno.pid,
        uid: this.#libc.geteuid(),
        mode: this.#mode.detached ? "detached" : "foreground",
        pidfile: this.#pidfile?.path ??
          (supervisor
            ? `${supervisor.pidfile} (held by supervisor pid ${supervisor.pid})`
            : "none"),
        logsTo: this.#published.logsTo,
        user: core.user ?? "unchanged",
        umask: core.umask.toString(8).padStart(3, "0"),
        chdir: core.chdir,
        startup: Math.round(performance.now() - this.#startedAt),
      },
    );
  }

  /** `prepare`, with the privileges the daemon started with. */
  async #prepare(): Promise<void> {
    await this.#payload(() => this.#def.prepare?.(this.#ctx));
  }

  /**
   * Hand what the daemon keeps writing to its user, then drop to it; warn
   * when running on as root.
   */
  #dropPrivileges(): void {
    const { libc, mode } = { libc: this.#libc, mode: this.#mode };
    this.#guardPayload(() => {
      leavePrivateDenoDir(libc, mode.denoDir, mode.identity);
      if (mode.identity !== undefined) {
        this.#state?.handTo(
          mode.identity.user?.uid ?? UNCHANGED_ID,
          mode.identity.gid,
        );
        dropPrivileges(libc, mode.identity);
        this.#log.info("Running as uid {uid}, gid {gid}", {
          uid: mode.identity.user?.uid ?? libc.geteuid(),
          gid: mode.identity.gid,
        });
      } else if (libc.geteuid() === 0) {
        this.#log.warning(
          "Running as root: pass --user to drop privileges after prepare",
        );
      }
    });
  }

  /**
   * `main`. Its return ends the daemon only after a stop request: a `main`
   * that started a server without awaiting it runs on until stopped or
   * until its event loop has nothing left ({@linkcode #nothingLeft}), ready
   * or not: a server's `onListen` may still call `ctx.ready()`.
   */
  async #main(): Promise<void> {
    if (this.#readyFd !== null) sendLine(this.#libc, this.#readyFd, "MAIN", "");
    await this.#payload(() => this.#def.main(this.#ctx));
    this.#mainReturned = true;
    const stopped = this.#stop!.requested;
    if (stopped === null) {
      this.#log.info(
        this.#ready
          ? "main() returned: running on while the event loop has work"
          : "main() returned before ctx.ready() was called: waiting for it while the event loop has work",
      );
      this.#mode.runsOn?.();
      this.#released.resolve();
      return;
    }
    this.#stoppedAsAsked(stopped);
  }

  /** End after a stop request; `start`, if still waiting, learns why. */
  #stoppedAsAsked(stopped: string): never {
    if (!this.#ready && this.#readyFd !== null) {
      sendError(
        this.#libc,
        this.#readyFd,
        Exit.FAILURE,
        `Stopped by ${stopped} before it was ready`,
      );
    }
    this.#finish(0, stopped);
  }

  /**
   * The event loop is empty (`beforeunload`: no timer, socket, pending
   * operation or child left, so no code can run again). Seen only once
   * `main` returned: until then the entry point's pending `await` keeps the
   * process alive, as it always did.
   */
  #nothingLeft(): void {
    if (this.#exiting) return;
    const stopped = this.#stop?.requested ?? null;
    try {
      if (stopped !== null) this.#stoppedAsAsked(stopped);
      if (!this.#ready) {
        this.#failStart(
          new DaemonError(
            "The daemon's main() returned before it was ready (ctx.ready() was not called), and nothing was left to run",
          ),
        );
      }
      this.#finish(0, "main returned and nothing was left to run");
    } catch {
      // StartFailed: the exit code is resolved.
    }
  }

  /** What every hook receives. */
  get #ctx(): DaemonContext {
    return this.#context ??= this.#makeContext();
  }
  #context: DaemonContext | undefined;

  #makeContext(): DaemonContext {
    const { def, core } = { def: this.#def, core: this.#core };
    return {
      name: def.name,
      version: def.version,
      options: this.#options as OptionValues<OptionSpecs>,
      core,
      detached: this.#mode.detached,
      generation: this.#published.generation ?? 1,
      serve: (options, handler) =>
        serveShared(
          {
            generation: this.#published.generation ?? 1,
            signal: this.#stop!.signal,
            warn: (message) => this.#log.warning(message),
            steer: (port) => steerToNewest(this.#libc, port),
            replaced: () => this.#replaced(),
          },
          options,
          handler,
        ),
      signal: this.#stop!.signal,
      log: this.#log,
      ready: () => this.#onReady(),
      status: (text) => this.#manager.status(text),
      extendTimeout: (seconds) => this.#manager.extendTimeout(seconds),
      onReload: (handler) => {
        this.#reloadHandlers.push(handler);
      },
    };
  }

  #onReady(): void {
    if (this.#ready || this.#exiting) return;
    if (!this.#afterDrop) {
      this.#readyHeld = true;
      return;
    }
    const pidfile = this.#pidfile;
    if (pidfile !== undefined && !pidfile.isCurrent()) {
      try {
        this.#failStart(
          new DaemonError(
            `Lost the pidfile: ${
              JSON.stringify(pidfile.path)
            } was removed or replaced`,
          ),
        );
      } catch {
        // StartFailed: the exit code is resolved; the payload is not told.
      }
      return;
    }
    this.#ready = true;
    if (this.#mode.upgrade !== undefined) {
      this.#recordExit({ how: "running", detail: "", code: null });
    }
    this.#log.info("Ready (pid {pid}, {ms} ms after launch)", {
      pid: Deno.pid,
      ms: Math.round(performance.now()),
    });
    this.#manager.ready(this.#mode.detached);
    if (this.#readyFd !== null) {
      sendLine(this.#libc, this.#readyFd, "READY", String(Deno.pid));
      this.#libc.close(this.#readyFd);
      this.#readyFd = null;
    }
    this.#reloads.whenReady();
  }

  /** Run a start-up step: a failure ends the start-up. */
  #guard(step: () => void): void {
    try {
      step();
    } catch (err) {
      this.#failStart(err);
    }
  }

  /**
   * Run a payload step (or one after it): a failure before ready ends the
   * start-up; after ready it ends the daemon.
   */
  #guardPayload(step: () => void): void {
    try {
      step();
    } catch (err) {
      this.#failed(err);
    }
  }

  async #payload(hook: () => void | Promise<void>): Promise<void> {
    try {
      await hook();
    } catch (err) {
      this.#failed(err);
    }
  }

  /** A step or the payload threw. */
  #failed(err: unknown): never {
    if (err instanceof StartFailed) throw err;
    if (!this.#ready) this.#startFailedUnlessStopping(err);
    this.#log.fatal("The daemon failed: {error}", { error: err });
    this.#finish(1, "error in main", err);
  }

  #uncaught(err: unknown): void {
    if (this.#exiting) return;
    if (!this.#ready) {
      try {
        this.#startFailedUnlessStopping(err);
      } catch {
        // StartFailed: the exit code is resolved.
      }
      return;
    }
    this.#log.fatal("Uncaught error: {error}", { error: err });
    try {
      this.#finish(1, "uncaught error", err);
    } catch {
      // StartFailed: the exit code is resolved.
    }
  }

  /**
   * A hook's error before ready fails the start-up, unless a stop was
   * requested: then the daemon ends as asked (a hook that awaits
   * `ctx.signal`, as `fetch` does, rejects with its reason), and the error
   * is logged.
   */
  #startFailedUnlessStopping(err: unknown): never {
    const stopped = this.#stop?.requested ?? null;
    if (stopped === null) this.#failStart(err);
    // The stop's own reason, rejected back, says nothing new.
    if (err !== this.#stop!.signal.reason) {
      this.#log.warning("Stopping before it was ready: {error}", {
        error: err,
      });
    }
    this.#stoppedAsAsked(stopped);
  }

  /**
   * Report a start-up failure to `start` (or stderr): exit 1, or 4 for a
   * port refused for want of privilege.
   */
  #failStart(thrown: unknown): never {
    if (!this.#exiting) {
      this.#exiting = true;
      const { error: err, code } = startupFailure(thrown);
      // denod's own refusals are one line; a payload's error keeps its stack.
      this.#log.fatal("Start-up failed: {error}", {
        error: err instanceof DaemonError ? err.message : err,
      });
      this.#manager.failed(err);
      this.#recordExit({
        how: "failed",
        detail: `start-up failed: ${errorText(err)}`,
        code: 1,
      });
      if (this.#readyFd !== null) {
        sendError(this.#libc, this.#readyFd, code, errorText(err));
      }
      this.#state?.close();
      this.#leavePidfile();
      this.#exit.resolve(code);
    }
    throw new StartFailed();
  }

  /**
   * Say how the daemon ended, remove the pidfile (still locked) and resolve
   * the exit code. `why` is what ended it; `error`, the error that did.
   */
  #finish(code: number, why: string, error?: unknown): never {
    if (!this.#exiting) {
      this.#exiting = true;
      const by = this.#ready ? this.#replacedBy() : null;
      this.#recordExit(
        error !== undefined
          ? { how: "failed", detail: `${why}: ${errorText(error)}`, code }
          : by !== null
          ? { how: "upgraded", detail: `replaced by pid ${by}; ${why}`, code }
          : why.startsWith("main returned")
          ? { how: "returned", detail: why, code }
          : why === SUPERVISOR_GONE
          ? { how: "failed", detail: why, code }
          : { how: "stopped", detail: why, code },
      );
      this.#stop?.done();
      if (this.#stop?.requested != null) {
        this.#log.info(
          "Stopped ({why}, exit {code}, {ms} ms after the stop request)",
          {
            why: by === null ? why : `upgraded: replaced by pid ${by}; ${why}`,
            code,
            ms: this.#stop.elapsedMs(),
          },
        );
      } else {
        this.#log.info("Stopped ({why}, exit {code}, after {s} s)", {
          why: by === null ? why : `upgraded: replaced by pid ${by}; ${why}`,
          code,
          s: Math.round((performance.now() - this.#startedAt) / 100) / 10,
        });
      }
      this.#state?.close();
      this.#leavePidfile();
      this.#exit.resolve(code);
    }
    throw new StartFailed();
  }

  /**
   * Whether a newer generation runs: the pidfile names another pid, or the
   * supervisor's record another daemon.
   */
  #replaced(): boolean {
    return this.#replacedBy() !== null;
  }

  /** The pid of the newer generation that replaced this one, or `null`. */
  #replacedBy(): number | null {
    const mode = this.#mode;
    if (this.#pidfile !== undefined) {
      const pid = namedPid(this.#pidfile);
      return pid !== undefined && pid !== Deno.pid ? pid : null;
    }
    if (!mode.detached || mode.supervisor === undefined) return null;
    const sup = readSupervisorState(
      this.#libc,
      mode.supervisor.pidfile,
      mode.supervisor.pid,
    );
    return sup?.child != null && sup.child !== Deno.pid ? sup.child : null;
  }

  /**
   * Remove the pidfile (still locked) and its side files, unless it names
   * another process: an upgrade handed it, lock and all, to the next
   * generation (or this generation failed to replace the one it names).
   */
  #leavePidfile(): void {
    const pidfile = this.#pidfile;
    if (pidfile === undefined) return;
    const holder = namedPid(pidfile);
    if (holder !== undefined && holder !== Deno.pid) {
      pidfile.close();
      this.#log.info("Pidfile {path} names pid {pid} now: left to it", {
        path: pidfile.path,
        pid: holder,
      });
      return;
    }
    if (pidfile.isCurrent()) {
      removeSideFiles(this.#libc, pidfile.path, { keepExit: true });
    }
    if (!pidfile.remove()) {
      this.#log.info(
        "Pidfile {path} left for stop to remove (no permission)",
        { path: pidfile.path },
      );
    }
  }
}

/** Why a supervised daemon stops when its supervisor is gone: nobody asked. */
const SUPERVISOR_GONE = "the supervisor's exit";

/**
 * Stop requests (SIGTERM, SIGINT, the supervisor's end): the first aborts
 * the payload's signal and starts the stop timeout; a second one, or the
 * timeout, ends the daemon at once.
 */
class StopRequests {
  readonly #controller = new AbortController();
  #requested: string | null = null;
  #startedAt = 0;
  #timer: Timer | undefined;

  constructor(
    private readonly log: Logger,
    private readonly manager: ServiceManager,
    private readonly timeoutSeconds: number,
    private readonly finish: (code: number, why: string) => never,
    private readonly mainReturned: () => boolean,
  ) {}

  /** Aborted on the first request. */
  get signal(): AbortSignal {
    return this.#controller.signal;
  }

  /** What asked the daemon to stop, or `null`. */
  get requested(): string | null {
    return this.#requested;
  }

  /** Milliseconds since the first request (0 without one). */
  elapsedMs(): number {
    return this.#requested === null
      ? 0
      : Math.round(performance.now() - this.#startedAt);
  }

  request(why: string): void {
    try {
      if (this.#requested !== null) {
        this.log.warning("Second {signal}: exiting now", { signal: why });
        this.finish(1, `second ${why}`);
      }
      this.#requested = why;
      this.#startedAt = performance.now();
      this.log.info("Stopping on {signal}", { signal: why });
      this.manager.stopping();
      const timedOut = () => {
        // What main() left running was never told to stop: say how.
        const hint = this.mainReturned()
          ? " (main() had returned: pass ctx.signal to what it starts, e.g. Deno.serve({ signal: ctx.signal }))"
          : "";
        this.log.error("Did not stop within {seconds} s: exiting{hint}", {
          seconds: this.timeoutSeconds,
          hint,
        });
        try {
          this.finish(1, "stop timeout");
        } catch {
          // The exit code is resolved.
        }
      };
      // Once main() has returned, what it left running decides when the
      // daemon ends, not this deadline.
      this.#timer = this.mainReturned()
        ? unreferenced(this.timeoutSeconds * 1000, timedOut)
        : after(this.timeoutSeconds * 1000, timedOut);
      this.#controller.abort(new DaemonError(`Stopped by ${why}`));
    } catch (err) {
      if (!(err instanceof StartFailed)) throw err;
    }
  }

  /** The daemon is ending: no more timeout. */
  done(): void {
    this.#timer?.cancel();
  }
}

/**
 * Reloads (SIGHUP) run one at a time; a SIGHUP during one asks for another
 * after it, so every signal is covered by a reload that started after it
 * arrived; one that arrives while the daemon starts runs once it is ready.
 * The outcome is published for `reload` to read.
 */
class Reloads {
  #running = false;

  constructor(
    private readonly published: DaemonState,
    private readonly reload: () => Promise<void>,
    private readonly daemon: {
      log: Logger;
      manager: ServiceManager;
      detached: boolean;
      publish: () => void;
      exiting: () => boolean;
      /** Until then a request waits: a reload tells the manager READY=1. */
      ready: () => boolean;
    },
  ) {}

  request(): void {
    this.published.reloadsRequested++;
    this.daemon.publish();
    if (this.daemon.ready()) {
      void this.#run();
      return;
    }
    this.daemon.log.info(
      "Reload requested while the daemon starts: it runs once the daemon is ready",
    );
  }

  /** The daemon is ready: run what was requested while it started. */
  whenReady(): void {
    void this.#run();
  }

  async #run(): Promise<void> {
    if (this.#running) return;
    this.#running = true;
    const { log, manager, detached, publish, exiting } = this.daemon;
    const state = this.published;
    while (state.reloadsDone < state.reloadsRequested && !exiting()) {
      const covering = state.reloadsRequested;
      let error: string | null = null;
      manager.reloading();
      try {
        await this.reload();
      } catch (err) {
        error = errorText(err);
        log.error("Reload failed: {error}", { error: err });
      }
      state.reloadsDone = covering;
      state.lastReloadError = error;
      publish();
      // The daemon runs on after a failed reload too: it is ready again.
      if (error !== null) manager.status(`Reload failed: ${error}`);
      manager.ready(detached);
    }
    this.#running = false;
  }
}

/**
 * Attach {@linkcode NEWEST_SOCKET} to the `SO_REUSEPORT` group of our
 * listener on `port`: Deno does not give out a server's descriptor, so it
 * is found among ours by its port.
 */
function steerToNewest(libc: Libc, port: number): void {
  for (const fd of libc.openFds()) {
    if (libc.tcpListenerPort(fd) !== port) continue;
    libc.attachReuseportFilter(fd, NEWEST_SOCKET);
    return;
  }
  throw new Error(`no listening socket on port ${port}`);
}

/** The pid a pidfile names, or `undefined` (none yet, closed, unreadable). */
function namedPid(pidfile: Pidfile): number | undefined {
  try {
    return pidfile.isCurrent() ? pidfile.read() : undefined;
  } catch {
    return undefined;
  }
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
    const st = libc.stat(fd);
    if (st.type !== "fifo") return false;
    // The runtime keeps duplicates of stdout and stderr: not a notify pipe.
    return [1, 2].every((std) => {
      try {
        const other = libc.stat(std);
        return other.dev !== st.dev || other.ino !== st.ino;
      } catch {
        return true;
      }
    });
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
      foreground: true,
      program: [Deno.execPath()],
      options: {},
      startedAt: Date.now(),
    });
    pidfile.write(Deno.pid);
    pidfile.closeWriter();
    return pidfile;
  } catch (err) {
    pidfile.remove();
    throw err;
  }
}
