/**
 * The supervisor of `start --restart`: a small process between the pidfile
 * and the daemon. It spawns the daemon (this program again, stage `daemon`),
 * waits for it to exit through a pidfd — a thread blocked in the kernel, no
 * polling, no timer while the daemon runs — and restarts it after a delay
 * that grows ×1.5 per restart in a row, up to 15 s. After `--max-restarts`
 * restarts in a row it gives up, leaving the pidfile and the reason for
 * `status`. TERM and INT stop the daemon and then the supervisor; HUP
 * reopens the log and is passed on as a reload, USR2 is passed on as is.
 *
 * It loads no option parser and no logging library: its settings come in
 * the stage descriptor, and its few records are formatted like the daemon's
 * own by `_supervisor_log.ts`.
 *
 * @module
 */
import type { ExitStatus, Libc } from "../ffi/mod.ts";
import { collectExit, describeExit, howItEnded, signal } from "./process.ts";
import { plural } from "./words.ts";
import { catchUncaught } from "./errors.ts";
import { redirectToLogFile } from "./logfile.ts";
import { Pidfile } from "./pidfile.ts";
import { readMessages, sendLine } from "./readiness.ts";
import {
  HANDLED_SIGNALS,
  inheritedExitFd,
  PIDFILE_FD,
  READY_FD,
  spawnStage,
  type Stage,
  type SupervisorConfig,
  type SupervisorStage,
} from "./stage.ts";
import {
  ExitRecordFile,
  removeSideFiles,
  StateFile,
  type SupervisedUpgrade,
  supervisorPath,
  type SupervisorState,
  takeUpgradeRequest,
} from "./state.ts";
import { DroppedRecords } from "./dropped.ts";
import {
  makePrivateDenoDir,
  type PrivateDenoDir,
  removePrivateDenoDir,
} from "./denodir.ts";
import { SupervisorLog } from "./_supervisor_log.ts";
import { after, type Timer, within } from "./timer.ts";

/** The longest restart delay, unless `--restart-delay` itself is longer. */
export const MAX_DELAY = 15;
/** Seconds past the daemon's stop timeout before the supervisor kills it. */
const KILL_AFTER = 2;

/** The delay before restart number `inARow + 1` in a row, in seconds (to the ms). */
export function restartDelay(first: number, inARow: number): number {
  const delay = Math.min(first * 1.5 ** inARow, Math.max(MAX_DELAY, first));
  return Math.round(delay * 1000) / 1000;
}

/** What the supervisor was doing when a run of the daemon ended. */
export type RunPhase =
  /** The daemon could not be spawned. */
  | "spawning"
  /** It had not said it was ready. */
  | "starting"
  /** It had said it was ready. */
  | "up"
  /** A stop was asked for (TERM, INT, a lost pidfile). */
  | "stopping";

/** How a run of the daemon ended. */
export interface RunExit {
  /** `"status 1"`, `"signal SIGSEGV"`, or why it could not be spawned. */
  status: string;
  /** Whether it exited with status 0. */
  clean: boolean;
  /** How long it ran, in milliseconds. */
  upMs: number;
}

/** The settings {@linkcode nextStep} follows. */
export type RestartPolicy = Pick<
  SupervisorConfig,
  "restart" | "delay" | "maxRestarts" | "reset"
>;

/** The supervisor's counts before a run's end is judged. */
export interface Counters {
  /** Restarts since `start`: 0 during the first run. */
  restarts: number;
  /** Restarts in a row. */
  inARow: number;
}

/** What the supervisor does once a run of the daemon has ended. */
export type Step =
  /** Exit 0: a stop was asked for, or the daemon is done (`--restart on-failure`). */
  | { do: "exit"; code: 0; because: "stopped" | "done" }
  /** Exit 1: the first daemon never became ready, and `start` reports why. */
  | { do: "exit"; code: 1; because: "never ready" }
  /** Exit 1, keeping the pidfile and `why` for `status`. */
  | { do: "give-up"; why: string }
  /** Run it again after `delay` seconds, as restart `inARow` in a row. */
  | { do: "restart"; delay: number; inARow: number };

/**
 * What follows the end of a run. A daemon that could not be spawned, or
 * that ended before it was ready (for instance stopped for not being ready
 * in time), failed whatever its exit status.
 *
 * @param phase What the supervisor was doing when the run ended.
 * @param exit How it ended.
 * @param policy `--restart`, `--restart-delay`, `--max-restarts`, `--restart-reset`.
 * @param counters The counts so far.
 * @returns The step to take.
 *
 * @example A crash after a minute up, with two quick restarts before it
 * ```ts
 * import { nextStep } from "./supervise.ts";
 * const policy = { restart: "on-failure", delay: 1, maxRestarts: 5, reset: 30 } as const;
 * const exit = { status: "status 1", clean: false, upMs: 60_000 };
 * console.log(nextStep("up", exit, policy, { restarts: 2, inARow: 2 }));
 * // { do: "restart", delay: 1, inARow: 1 }: the count starts afresh
 * ```
 */
export function nextStep(
  phase: RunPhase,
  exit: RunExit,
  policy: RestartPolicy,
  counters: Counters,
): Step {
  if (phase === "stopping") return { do: "exit", code: 0, because: "stopped" };
  const ready = phase === "up";
  if (!ready && counters.restarts === 0) {
    return { do: "exit", code: 1, because: "never ready" };
  }
  if (policy.restart === "on-failure" && exit.clean && ready) {
    return { do: "exit", code: 0, because: "done" };
  }
  const inARow = exit.upMs >= policy.reset * 1000 ? 0 : counters.inARow;
  if (inARow >= policy.maxRestarts) {
    return {
      do: "give-up",
      why: `gave up after ${
        plural(inARow, "restart")
      } in a row (--max-restarts ${policy.maxRestarts}); the last ended with ${exit.status}`,
    };
  }
  return {
    do: "restart",
    delay: restartDelay(policy.delay, inARow),
    inARow: inARow + 1,
  };
}

/** One run of the daemon. */
interface Child {
  pid: number;
  /** Its pidfd; -1 once it was reaped and the pidfd closed. */
  pidfd: number;
  /** Our end of the daemon's lifeline pipe. */
  lifeline: number;
  /** `performance.now()` at spawn. */
  startedAt: number;
  /** The start-up error it reported, or ours (not ready in time), if any. */
  error: string | null;
  /** Stops a daemon that is not ready within `--ready-timeout`. */
  readyTimer?: Timer;
  /** SIGKILL after the stop timeout, once it was asked to stop. */
  killTimer?: Timer;
  /** Settles once its readiness pipe is read to the end. */
  messages: Promise<void>;
  /** Ends the reading of its readiness pipe, which a process of its own may keep open. */
  reading: AbortController;
  /** A generation an upgrade started, once it replaced the daemon. */
  promoted?: boolean;
  /** A generation an upgrade started that exited before it was ready. */
  exited?: boolean;
  /** Its private `DENO_DIR` under `deno run --user`, removed once it ended. */
  denoDir: string | null;
}

/**
 * What the supervisor is doing. What each event (a signal, a readiness
 * message, a timer, the daemon's exit) does is decided from the phase, never
 * from a combination of fields; the rest of the supervisor's state is counts,
 * the last exit, a reload owed and the pipe to `start`.
 */
type Phase =
  /**
   * About to spawn the daemon: before the first run and after a back-off.
   * Spawning is synchronous, so no event is handled in this phase.
   */
  | { kind: "spawning" }
  /**
   * The daemon runs and has not said it is ready. One stopped for not being
   * ready in time stays here: it may still say it is.
   */
  | { kind: "starting"; child: Child }
  /** The daemon said it is ready. */
  | { kind: "up"; child: Child }
  /**
   * Waiting before the next run, due `until` (ms since the epoch); `wake`
   * ends the wait early.
   */
  | { kind: "backing-off"; until: number; wake: () => void }
  /**
   * Asked to stop (`by` a signal, or a lost pidfile): waiting for the daemon
   * to exit, when one runs, then exiting. `ready`: whether that daemon has
   * said it is ready.
   */
  | { kind: "stopping"; by: string; child: Child | null; ready: boolean }
  /**
   * Gave up on the daemon: exiting (synchronously), with the pidfile and
   * `why` left for `status`.
   */
  | { kind: "gave-up"; why: string };

/** The daemon that runs in a phase, and whether it has said it is ready. */
function running(phase: Phase): { child: Child; ready: boolean } | null {
  switch (phase.kind) {
    case "starting":
      return { child: phase.child, ready: false };
    case "up":
      return { child: phase.child, ready: true };
    case "stopping":
      return phase.child && { child: phase.child, ready: phase.ready };
    default:
      return null;
  }
}

/** A run of the daemon, once it has ended. */
interface Run {
  phase: RunPhase;
  exit: RunExit;
  /** A sentence for the log. */
  ended: string;
  /** For `start`, when this was the first run. */
  error: string;
  /** How the daemon said it ended, from its exit record, if it did. */
  said?: Said;
}

/** What a daemon said of its end (see {@linkcode SupervisorState}). */
type Said = NonNullable<NonNullable<SupervisorState["lastExit"]>["said"]>;

/**
 * Spawn the daemon (stage `daemon`), with a pidfd on it.
 *
 * @returns The run (its pid and pidfd, our end of its lifeline, its private
 * `DENO_DIR`), and the read end of its readiness pipe.
 */
function spawnDaemon(
  libc: Libc,
  stage: Stage,
  command: { path: string; argv: string[] } | undefined,
  exitFd: number | undefined,
): { child: Child; messages: number } {
  const [r, w] = libc.pipe();
  // The daemon's end closes with us; ours stays open while it runs.
  const [lifeline, keep] = libc.pipe();
  // Under deno run --user, its own Deno caches (denodir.ts): it removes
  // them before it drops privileges, we do once it ended.
  let denoDir: PrivateDenoDir | null = null;
  let pid: number;
  try {
    if (stage.daemon.identity !== null) {
      denoDir = makePrivateDenoDir(libc, undefined);
    }
    pid = spawnStage(
      libc,
      {
        stage: "daemon",
        pidfile: stage.pidfile,
        noNewPrivs: stage.noNewPrivs,
        daemon: stage.daemon,
        supervisor: Deno.pid,
        denoDir,
        upgrade: stage.upgrade ?? null,
      },
      {
        stdio: { out: 1 },
        readyFd: w,
        lifelineFd: lifeline,
        exitFd,
        command,
      },
    );
  } catch (err) {
    libc.close(r);
    libc.close(keep);
    if (denoDir !== null) removePrivateDenoDir(denoDir.dir);
    throw err;
  } finally {
    libc.close(w);
    libc.close(lifeline);
  }
  // Our own unreaped child: its pid cannot be reused before we reap it.
  let pidfd: number;
  try {
    pidfd = libc.pidfdOpen(pid);
  } catch (err) {
    // Untracked, it must not run: closing its lifeline stops it.
    libc.close(keep);
    libc.close(r);
    throw err;
  }
  const child: Child = {
    pid,
    pidfd,
    lifeline: keep,
    startedAt: performance.now(),
    error: null,
    messages: Promise.resolve(),
    reading: new AbortController(),
    denoDir: denoDir?.dir ?? null,
  };
  return { child, messages: r };
}

/** A number of seconds for a record: `1.5 s`. */
function seconds(ms: number): string {
  return `${Math.round(ms / 100) / 10} s`;
}

/** Thrown by `#finish` to end whatever was running: the exit code is resolved. */
class Finished extends Error {}

class Supervisor {
  #libc: Libc;
  #stage: Stage;
  #config: SupervisorConfig;
  #log: SupervisorLog;
  #dropped = new DroppedRecords();
  #pidfile: Pidfile;
  #file: StateFile<SupervisorState>;
  #phase: Phase = { kind: "spawning" };
  readonly #exit = Promise.withResolvers<number>();
  #finished = false;
  /** The readiness pipe to `start`, until the first daemon is ready. */
  #toCaller: number | null = READY_FD;
  /** A reload asked for while a daemon started: passed on once one is ready. */
  #pendingReload = false;
  #restarts = 0;
  #inARow = 0;
  #lastExit: SupervisorState["lastExit"] = null;
  /** The program the daemon is run from, once an upgrade named one. */
  #command: { path: string; argv: string[] } | undefined;
  /**
   * The upgrade under way: the new generation, not yet ready, and its
   * settings, which restarts adopt once it is ready.
   */
  #upgrading: {
    child: Child;
    answer: SupervisedUpgrade;
    stage: Stage;
    command: { path: string; argv: string[] };
  } | null = null;
  /** The last upgrade's answer, for `upgrade` to read. */
  #upgradeAnswer: SupervisedUpgrade | undefined;
  /** The last upgrade request refused, kept apart from that answer. */
  #refused: { id: string; error: string } | undefined;
  /** The exit record, which each daemon in turn writes (see {@linkcode ExitRecord}). */
  #exitRecord: ExitRecordFile | undefined;

  constructor(libc: Libc, stage: Stage, config: SupervisorConfig) {
    this.#libc = libc;
    this.#stage = stage;
    this.#config = config;
    this.#log = new SupervisorLog(
      libc,
      config.log,
      config.name,
      this.#dropped,
    );
    this.#pidfile = Pidfile.adopt(libc, stage.pidfile, PIDFILE_FD);
    const exitFd = inheritedExitFd(libc);
    if (exitFd !== undefined) {
      this.#exitRecord = new ExitRecordFile(libc, exitFd);
    }
    libc.setCloexec(READY_FD, true);
    if (config.noCoreDumps) libc.disableCoreDumps();
    this.#file = StateFile.create(
      libc,
      supervisorPath(stage.pidfile),
      this.#state(),
    );
    this.#dropped.publishEvery(1000, () => this.#publish());
  }

  #state(): SupervisorState {
    const phase = this.#phase;
    const daemon = running(phase);
    return {
      pid: Deno.pid,
      child: daemon?.child.pid ?? null,
      childReady: daemon?.ready ?? false,
      restarts: this.#restarts,
      lastExit: this.#lastExit,
      nextRestartAt: phase.kind === "backing-off" ? phase.until : null,
      gaveUp: phase.kind === "gave-up" ? phase.why : null,
      stopTimeout: this.#config.stopTimeout,
      logsTo: this.#config.log.describe,
      ...(this.#dropped.total > 0
        ? { droppedRecords: this.#dropped.total }
        : {}),
      ...(this.#upgradeAnswer ? { upgrade: this.#upgradeAnswer } : {}),
      ...(this.#refused ? { refused: this.#refused } : {}),
    };
  }

  /** Rewrite the state file; a full disk must not stop the supervision. */
  #publish(): void {
    try {
      this.#file.write(this.#state());
    } catch {
      // `status` shows the previous state meanwhile.
    }
  }

  /** Signal the daemon through its pidfd (valid until it is reaped). */
  #signal(child: Child, sig: Deno.Signal): void {
    // Reaped: the descriptor number may be another's by now.
    if (child.pidfd < 0) return;
    signal(this.#libc, child.pidfd, child.pid, sig);
  }

  /** SIGTERM the daemon, and SIGKILL it if it outlives its stop timeout. */
  #stopChild(child: Child): void {
    if (child.pidfd < 0) return; // reaped already
    this.#signal(child, "SIGTERM");
    const wait = this.#config.stopTimeout + KILL_AFTER;
    child.killTimer ??= after(wait * 1000, () => {
      this.#log.error(
        `The daemon (pid ${child.pid}) did not stop within ${wait} s: killing it`,
      );
      this.#signal(child, "SIGKILL");
    });
  }

  #installHandlers(): void {
    Deno.addSignalListener("SIGTERM", () => this.#onStop("SIGTERM"));
    Deno.addSignalListener("SIGINT", () => this.#onStop("SIGINT"));
    Deno.addSignalListener("SIGHUP", () => this.#onReload());
    // Not the first user signal (it opens Deno's inspector); USR2 is the payload's.
    Deno.addSignalListener("SIGWINCH", () => this.#onUpgrade());
    Deno.addSignalListener("SIGUSR2", () => {
      const daemon = running(this.#phase);
      if (daemon) this.#signal(daemon.child, "SIGUSR2");
    });
    // Spawned with them blocked (stage.ts): a stop sent meanwhile runs now.
    this.#libc.unblockSignals(HANDLED_SIGNALS);
    const fatal = (err: unknown) => {
      const text = err instanceof Error
        ? err.stack ?? err.message
        : String(err);
      this.#log.error(`The supervisor failed: ${text}`);
      if (this.#toCaller !== null) {
        sendLine(this.#libc, this.#toCaller, "ERROR", `Supervisor: ${text}`);
      }
      // The daemon stops by itself when its lifeline closes with this process.
      try {
        this.#finish(1);
      } catch {
        // Finished: the exit code is resolved.
      }
    };
    catchUncaught(fatal);
  }

  /** TERM or INT: stop the daemon, if one runs, then exit. */
  #onStop(signal: Deno.Signal): void {
    const phase = this.#phase;
    if (phase.kind === "stopping") {
      // The daemon exits at once on a second signal.
      this.#log.warning(`Second ${signal}: passing it on`);
      if (phase.child) this.#signal(phase.child, signal);
      return;
    }
    this.#log.info(`Stopping on ${signal}`);
    if (this.#upgrading !== null) {
      this.#upgradeFailed(`Stopped by ${signal}`);
    }
    if (phase.kind === "starting" || phase.kind === "up") {
      this.#phase = {
        kind: "stopping",
        by: signal,
        child: phase.child,
        ready: phase.kind === "up",
      };
      this.#stopChild(phase.child);
    } else if (phase.kind === "backing-off") {
      this.#phase = { kind: "stopping", by: signal, child: null, ready: false };
      phase.wake();
    }
  }

  /** HUP: reopen our log, then have the daemon reload. */
  #onReload(): void {
    const phase = this.#phase;
    if (phase.kind === "stopping") return;
    try {
      redirectToLogFile(
        this.#libc,
        this.#config.log.file,
        this.#config.log.owner,
      );
    } catch (err) {
      this.#log.error(`Cannot reopen the log file: ${(err as Error).message}`);
    }
    if (phase.kind === "up") {
      this.#signal(phase.child, "SIGHUP");
    } else if (phase.kind === "starting") {
      this.#pendingReload = true;
      this.#log.info(
        `Reload requested while the daemon (pid ${phase.child.pid}) starts: passed on once it is ready`,
      );
    } else {
      this.#log.info(
        "Reload requested while no daemon runs: the next one starts with the current configuration",
      );
    }
  }

  /** READY from `child`: it is up, and said so even while being stopped. */
  #onReady(child: Child): void {
    if (this.#upgrading?.child === child) {
      return child.exited ? undefined : this.#promote(child);
    }
    const phase = this.#phase;
    if (phase.kind === "starting" && phase.child === child) {
      this.#phase = { kind: "up", child };
    } else if (
      phase.kind === "stopping" && phase.child === child && !phase.ready
    ) {
      // A stop does not make it less ready: `start` and `status` hear of it.
      this.#phase = { ...phase, ready: true };
    } else {
      return;
    }
    child.readyTimer?.cancel();
    if (this.#toCaller === null) {
      this.#log.info(
        `The daemon is ready again (pid ${child.pid}, restart ${this.#restarts})`,
      );
    } else if (!this.#reportReady(this.#toCaller, child)) {
      return;
    }
    this.#publish();
    if (this.#pendingReload) {
      this.#pendingReload = false;
      this.#signal(child, "SIGHUP");
    }
  }

  /**
   * Tell `start` that the first daemon is ready, unless the pidfile was lost
   * meanwhile: then tell it that, and stop the daemon.
   *
   * @returns Whether the daemon was reported ready.
   */
  #reportReady(toCaller: number, child: Child): boolean {
    if (!this.#pidfile.isCurrent()) {
      const why = `Lost the pidfile: ${
        JSON.stringify(this.#pidfile.path)
      } was removed or replaced`;
      this.#log.error(why);
      sendLine(this.#libc, toCaller, "ERROR", why);
      this.#libc.close(toCaller);
      this.#toCaller = null;
      this.#phase = {
        kind: "stopping",
        by: "lost pidfile",
        child,
        ready: true,
      };
      this.#stopChild(child);
      return false;
    }
    sendLine(this.#libc, toCaller, "READY", String(child.pid));
    this.#libc.close(toCaller);
    this.#toCaller = null;
    this.#log.info(`The daemon is ready (pid ${child.pid})`);
    return true;
  }

  /**
   * WINCH from `upgrade`: spawn a new generation from the request beside
   * the pidfile while the daemon serves on; it replaces the daemon once it
   * is ready ({@linkcode Supervisor.#promote}). Restart counts are untouched.
   */
  #onUpgrade(): void {
    const request = takeUpgradeRequest(this.#libc, this.#stage.pidfile);
    if (request === null) return;
    const phase = this.#phase;
    const refuse = (why: string) => {
      this.#refused = { id: request.id, error: why };
      this.#publish();
    };
    if (phase.kind !== "up") return refuse("The daemon is not up: no upgrade");
    if (this.#upgrading !== null) return refuse("An upgrade is under way");
    const answer: SupervisedUpgrade = {
      id: request.id,
      pid: phase.child.pid,
      next: null,
      outcome: "starting",
      error: null,
    };
    this.#upgradeAnswer = answer;
    const stage = {
      ...this.#stage,
      daemon: request.daemon as Stage["daemon"],
      upgrade: { generation: request.generation, previous: phase.child.pid },
    };
    const command = {
      path: request.program[0],
      argv: [...request.program, "upgrade"],
    };
    let spawned;
    try {
      spawned = spawnDaemon(
        this.#libc,
        stage,
        command,
        this.#exitRecord?.fd,
      );
    } catch (err) {
      // No child to stop (and none under way: refused above).
      const why = `Cannot spawn the daemon: ${(err as Error).message}`;
      return this.#upgradeFailed(why, undefined, answer);
    }
    const { child } = spawned;
    answer.next = child.pid;
    this.#upgrading = { child, answer, stage, command };
    this.#log.info(
      `Upgrading: started generation ${request.generation} (pid ${child.pid}) beside pid ${phase.child.pid}`,
    );
    const timeout = this.#config.readyTimeout;
    child.readyTimer = after(timeout * 1000, () => {
      if (this.#upgrading?.child !== child) return;
      this.#upgradeFailed(`The daemon was not ready within ${timeout} s`);
    });
    child.messages = this.#follow(child, spawned.messages);
    void this.#libc.pidfdWait(child.pidfd, Infinity).then(async () => {
      if (child.promoted) return; // the run loop reaps it
      // Failed from now on (a READY still in its pipe no longer promotes
      // it), and answered once its last words and its status are in; the
      // upgrade stays under way until then.
      const failing = this.#upgrading?.child === child ? this.#upgrading : null;
      child.exited = true;
      child.readyTimer?.cancel();
      const status = await this.#exited(child);
      if (failing !== null) {
        this.#upgradeFailed(
          child.error ?? `The daemon ${howItEnded(status)} before it was ready`,
          child,
          failing.answer,
        );
      }
      this.#log.warning(
        `The new generation (pid ${child.pid}) exited with ${
          describeExit(status)
        } before it was ready; pid ${answer.pid} serves on`,
      );
    });
    this.#publish();
  }

  /** The new generation is ready: it becomes the daemon; the old one stops. */
  #promote(child: Child): void {
    const upgrading = this.#upgrading!;
    const phase = this.#phase;
    child.readyTimer?.cancel();
    this.#upgrading = null;
    if (phase.kind !== "up") {
      this.#upgradeFailed(
        "The daemon stopped during the upgrade",
        child,
        upgrading.answer,
      );
      return;
    }
    const old = phase.child;
    child.promoted = true;
    this.#phase = { kind: "up", child };
    // Restarts from now on run the new program and settings, as a daemon
    // of their own (not an upgrade of one still running).
    this.#stage = { ...upgrading.stage, upgrade: null };
    this.#command = upgrading.command;
    upgrading.answer.outcome = "done";
    this.#publish();
    this.#log.info(
      `Upgraded: pid ${child.pid} is ready; stopping pid ${old.pid}`,
    );
    this.#stopChild(old);
  }

  /** The upgrade failed: stop the new generation; the daemon serves on. */
  #upgradeFailed(
    why: string,
    child = this.#upgrading?.child,
    answer = this.#upgrading?.answer ?? this.#upgradeAnswer,
  ): void {
    // Not a later upgrade's, accepted while this one's child was reaped.
    if (this.#upgrading?.child === child) this.#upgrading = null;
    if (answer !== undefined && answer.outcome === "starting") {
      answer.outcome = "failed";
      answer.error = why;
    }
    if (child !== undefined) {
      child.readyTimer?.cancel();
      this.#log.error(`Upgrade failed: ${why} (pid ${child.pid})`);
      this.#stopChild(child);
    }
    this.#publish();
  }

  /**
   * What daemon `pid` said of its end in the exit record; when it said
   * nothing (a signal it could not handle), the record says so for it.
   */
  #childSaid(pid: number, status: string): Said | undefined {
    const file = this.#exitRecord;
    if (file === undefined) return undefined;
    const record = file.read();
    if (record !== null && record.pid === pid && record.how !== "running") {
      return { how: record.how, detail: record.detail };
    }
    file.write({
      pid,
      how: "killed",
      detail: status,
      code: null,
      at: Date.now(),
    });
    return undefined;
  }

  /** Spawn the daemon, time its start-up and follow its readiness messages. */
  #spawn(): Child {
    const { child, messages } = spawnDaemon(
      this.#libc,
      this.#stage,
      this.#command,
      this.#exitRecord?.fd,
    );
    const { pid } = child;
    this.#phase = { kind: "starting", child };
    const timeout = this.#config.readyTimeout;
    child.readyTimer = after(timeout * 1000, () => {
      const phase = this.#phase;
      if (phase.kind !== "starting" || phase.child !== child) return;
      child.error = `The daemon was not ready within ${timeout} s`;
      this.#log.error(`${child.error}: stopping it (pid ${pid})`);
      this.#stopChild(child);
    });
    child.messages = this.#follow(child, messages);
    return child;
  }

  /** Read the daemon's readiness messages from `fd` to the end, then close it. */
  async #follow(child: Child, fd: number): Promise<void> {
    try {
      for await (
        const msg of readMessages(this.#libc, fd, child.reading.signal)
      ) {
        if (msg.kind === "READY") {
          this.#onReady(child);
          // It closes its end once ready: whatever holds the pipe open
          // since is not the daemon, and would wake us every second.
          break;
        }
        // The first reason stands: ours (not ready in time) or its own.
        if (msg.kind === "ERROR") child.error ??= msg.text;
      }
    } catch {
      // A failed read ends the messages; the exit status is what counts.
    } finally {
      this.#libc.close(fd);
    }
  }

  /**
   * Wait for the daemon to exit, blocked in poll(2), then reap it. The phase
   * still names it: the run loop moves on from it in the same turn.
   *
   * @returns Its status; `null` when a process tracing it held the status
   * (the zombie is left: the supervisor must not hang on its user's word).
   */
  async #exited(child: Child): Promise<ExitStatus | null> {
    await this.#libc.pidfdWait(child.pidfd, Infinity);
    // Ended, by its own hand or killed, before or after its drop.
    if (child.denoDir !== null) removePrivateDenoDir(child.denoDir);
    // Its last words (a start-up error) may still be in the pipe; a child
    // of its own that kept the pipe open must not hold us for long.
    await within(child.messages, 1000);
    child.reading.abort();
    const status = await collectExit(this.#libc, child.pidfd, 1000);
    this.#libc.close(child.pidfd);
    child.pidfd = -1;
    this.#libc.close(child.lifeline);
    child.readyTimer?.cancel();
    child.killTimer?.cancel();
    return status;
  }

  /**
   * Exit. The pidfile and state file are removed, unless the supervisor gave
   * up: then both stay for `status` to report why (the pidfile is unlocked
   * as this process ends, so `start` and `stop` take it over).
   */
  #finish(code: number): never {
    if (this.#finished) throw new Finished();
    this.#finished = true;
    if (this.#phase.kind === "gave-up") {
      this.#publish();
      this.#file.close();
      this.#pidfile.close();
    } else {
      this.#file.remove();
      if (this.#pidfile.isCurrent()) {
        removeSideFiles(this.#libc, this.#pidfile.path, { keepExit: true });
      }
      this.#pidfile.remove();
    }
    this.#log.info(`Supervisor exits (${code})`);
    this.#exit.resolve(code);
    throw new Finished();
  }

  /** Supervise until stopped or given up; resolves with the exit code. */
  run(): Promise<number> {
    void this.#supervise().catch((err) => {
      if (!(err instanceof Finished)) throw err;
    });
    return this.#exit.promise;
  }

  async #supervise(): Promise<never> {
    const c = this.#config;
    this.#installHandlers();
    this.#log.info(
      `Supervising ${c.name} (pid ${Deno.pid}, restart ${c.restart}, first delay ${c.delay} s ×1.5 up to ${
        Math.max(MAX_DELAY, c.delay)
      } s, at most ${
        plural(c.maxRestarts, "restart")
      } in a row, counted afresh after ${c.reset} s up)`,
    );
    for (;;) {
      const run = await this.#runOnce();
      this.#lastExit = {
        status: run.exit.status,
        at: Date.now(),
        ...(run.said === undefined ? {} : { said: run.said }),
      };
      const step = nextStep(run.phase, run.exit, c, {
        restarts: this.#restarts,
        inARow: this.#inARow,
      });
      if (step.do === "restart") await this.#restartAfter(step, run.ended);
      else this.#end(step, run);
    }
  }

  /** Exit as `step` says, with a last record on how the daemon ended. */
  #end(step: Exclude<Step, { do: "restart" }>, run: Run): never {
    if (step.do === "give-up") {
      this.#phase = { kind: "gave-up", why: step.why };
      this.#log.error(`${run.ended}: ${step.why}`);
    } else if (step.because === "stopped") {
      this.#log.info(run.ended);
      // `start` still waits: it hears why, as from an unsupervised daemon.
      const phase = this.#phase;
      if (this.#toCaller !== null && phase.kind === "stopping") {
        sendLine(
          this.#libc,
          this.#toCaller,
          "ERROR",
          `Stopped by ${phase.by} before it was ready`,
        );
      }
    } else if (step.because === "done") {
      this.#log.info(`${run.ended}: done (--restart on-failure)`);
    } else {
      this.#log.error(
        `${run.ended}: not restarting a daemon that never started`,
      );
      if (this.#toCaller !== null) {
        sendLine(this.#libc, this.#toCaller, "ERROR", run.error);
      }
    }
    return this.#finish(step.do === "give-up" ? 1 : step.code);
  }

  /** Wait before the next run, unless a stop comes meanwhile. */
  async #restartAfter(
    step: Extract<Step, { do: "restart" }>,
    ended: string,
  ): Promise<void> {
    this.#inARow = step.inARow;
    this.#restarts++;
    this.#log.warning(
      `${ended}: restart ${step.inARow} of ${this.#config.maxRestarts} in a row in ${step.delay} s`,
    );
    const until = Date.now() + step.delay * 1000;
    const waited = new Promise<void>((resolve) => {
      const timer = after(step.delay * 1000, resolve);
      const wake = () => {
        timer.cancel();
        resolve();
      };
      this.#phase = { kind: "backing-off", until, wake };
    });
    this.#publish();
    await waited;
    if (this.#phase.kind === "stopping") this.#finish(0);
    this.#phase = { kind: "spawning" };
  }

  /** Run the daemon once, until it exits. */
  async #runOnce(): Promise<Run> {
    let child: Child;
    try {
      child = this.#spawn();
    } catch (err) {
      const why = `Cannot spawn the daemon: ${(err as Error).message}`;
      return {
        phase: "spawning",
        exit: { status: why, clean: false, upMs: 0 },
        ended: why,
        error: why,
      };
    }
    this.#log.info(
      this.#restarts === 0
        ? `Started the daemon (pid ${child.pid})`
        : `Started the daemon (pid ${child.pid}, restart ${this.#restarts}, ${this.#inARow} in a row)`,
    );
    this.#publish();
    let exit = await this.#exited(child);
    // An upgrade replaced it: follow the new generation.
    for (let now = running(this.#phase); now && now.child !== child;) {
      this.#log.info(
        `The previous generation (pid ${child.pid}) exited with ${
          describeExit(exit)
        }`,
      );
      child = now.child;
      exit = await this.#exited(child);
      now = running(this.#phase);
    }
    const said = this.#childSaid(child.pid, describeExit(exit));
    const phase = this.#phase;
    const ready = running(phase)?.ready ?? false;
    const status = describeExit(exit);
    const upMs = performance.now() - child.startedAt;
    const early = ready
      ? ""
      : ` before it was ready${
        child.error === null ? "" : ` (${child.error})`
      }`;
    return {
      phase: phase.kind === "stopping" ? "stopping" : ready ? "up" : "starting",
      exit: { status, clean: exit?.exited === true && exit.code === 0, upMs },
      ended: `The daemon (pid ${child.pid}) exited with ${status} after ${
        seconds(upMs)
      }${early}`,
      error: child.error ??
        `The daemon ${howItEnded(exit)} before it was ready`,
      ...(said === undefined ? {} : { said }),
    };
  }
}

/**
 * Run as the supervisor of `start --restart`, until stopped or given up.
 *
 * @param libc The OS interface.
 * @param stage The stage descriptor, with the supervisor's settings.
 * @returns The exit code (the CLI exits with it).
 */
export function runSupervisor(
  libc: Libc,
  stage: SupervisorStage,
): Promise<number> {
  return new Supervisor(libc, stage, stage.supervise).run();
}
