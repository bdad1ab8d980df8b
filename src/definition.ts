/**
 * The payload API's types: what a daemon declares and what its hooks
 * receive. Types only, so that every module may refer to them without
 * loading the command line.
 *
 * @module
 */
import type { Logger } from "@logtape/logtape";
import type { CoreOptions, OptionSpecs, OptionValues } from "./options.ts";

/** What every hook of a daemon receives. */
export interface DaemonContext<S extends OptionSpecs = OptionSpecs> {
  /** The daemon's name. */
  readonly name: string;
  /** The daemon's version. */
  readonly version: string;
  /** The daemon's own options, validated and typed. */
  readonly options: OptionValues<S>;
  /** The library's options (pidfile, log file, timeouts, …), resolved. */
  readonly core: CoreOptions;
  /** `true` when started with `start`, `false` under `run`. */
  readonly detached: boolean;
  /** Aborted when the daemon is asked to stop (SIGTERM, SIGINT). */
  readonly signal: AbortSignal;
  /** The daemon's logger: the log file when detached, stderr under `run`. */
  readonly log: Logger;
  /**
   * Say the service is ready. `start` returns only after this; call it once
   * the service answers (e.g. after the listener is bound).
   */
  ready(): void;
  /** Tell the service manager what the daemon is doing (`STATUS=` for systemd). */
  status(text: string): void;
  /** Ask the service manager for more time to start, reload or stop (`EXTEND_TIMEOUT_USEC`). */
  extendTimeout(seconds: number): void;
}

/** What a daemon declares. */
export interface DaemonDefinition<S extends OptionSpecs = OptionSpecs> {
  /** Name used in messages, default paths and the logger category: letters, digits, `.`, `_`, `-`. */
  name: string;
  /** Version shown by `version`. */
  version: string;
  /** One line shown by `help`. */
  description?: string;
  /** The daemon's own command-line options. */
  options?: S;
  /** Environment variables the daemon reads: `--clear-env` keeps them. */
  env?: readonly string[];
  /** Runs before `main`, with the privileges the daemon was started with. */
  prepare?(ctx: DaemonContext<S>): void | Promise<void>;
  /**
   * The service. Call `ctx.ready()` once it answers, and return (or resolve)
   * after `ctx.signal` is aborted and everything is shut down. An error
   * thrown here before `ready()` makes `start` fail with its message.
   */
  main(ctx: DaemonContext<S>): void | Promise<void>;
  /** Runs on SIGHUP (and `reload`) after the log file is reopened; throw to report failure. */
  reload?(ctx: DaemonContext<S>): void | Promise<void>;
}

/** A defined daemon, ready to run its command line. */
export interface Daemon<S extends OptionSpecs = OptionSpecs> {
  /** The definition it was made from. */
  readonly definition: DaemonDefinition<S>;
  /**
   * Run the command line (`start`, `stop`, `status`, `run`, …) and exit the
   * process with its exit code.
   *
   * @param args The arguments, `Deno.args` by default.
   */
  cli(args?: readonly string[]): Promise<never>;
}
