/**
 * The payload API's types: what a daemon declares and what its hooks
 * receive. Types only, so that every module may refer to them without
 * loading the command line.
 *
 * @module
 */
import type { CoreOptions, OptionSpecs, OptionValues } from "./options.ts";

/**
 * One level's logging method: a message with `{name}` placeholders filled
 * from `properties`, or a tagged template.
 *
 * @example
 * ```ts ignore
 * ctx.log.info("Listening on {port}", { port: 8000 });
 * ctx.log.info`Listening on ${8000}`;
 * ```
 */
export interface LogMethod {
  /**
   * @param message Text with `{name}` placeholders.
   * @param properties The placeholders' values and more structured data, or
   * a function that computes them only when the level is enabled.
   */
  (
    message: string,
    properties?: Record<string, unknown> | (() => Record<string, unknown>),
  ): void;
  /**
   * @param message The template's strings.
   * @param values Its values.
   */
  (message: TemplateStringsArray, ...values: readonly unknown[]): void;
}

/** A logging method of the levels that can also take an `Error`. */
export interface ErrorLogMethod extends LogMethod {
  /**
   * @param error The error, logged with its stack.
   * @param properties More structured data.
   */
  (
    error: Error,
    properties?: Record<string, unknown> | (() => Record<string, unknown>),
  ): void;
  /**
   * @param message Text with `{error}` where the error goes.
   * @param error The error.
   */
  (message: string, error: Error): void;
}

/**
 * A daemon's logger: a [LogTape](https://logtape.org) logger whose category
 * is the daemon's name. These are the methods denod promises; the object is
 * LogTape's own.
 */
export interface DaemonLogger {
  /** Log at level `trace`. */
  readonly trace: LogMethod;
  /** Log at level `debug`. */
  readonly debug: LogMethod;
  /** Log at level `info`. */
  readonly info: LogMethod;
  /** Log at level `warning`. */
  readonly warn: ErrorLogMethod;
  /** Log at level `warning`. */
  readonly warning: ErrorLogMethod;
  /** Log at level `error`. */
  readonly error: ErrorLogMethod;
  /** Log at level `fatal`. */
  readonly fatal: ErrorLogMethod;
  /**
   * A logger that adds `properties` to every record.
   *
   * @param properties Structured data for every record (a request id, say).
   * @returns The logger.
   */
  with(properties: Record<string, unknown>): DaemonLogger;
  /**
   * A logger of a sub-category of the daemon's.
   *
   * @param subcategory The sub-category's name.
   * @returns The logger.
   */
  getChild(subcategory: string): DaemonLogger;
}

/** What every hook of a daemon receives. */
export interface DaemonContext<S extends OptionSpecs = OptionSpecs> {
  /** The daemon's name. */
  readonly name: string;
  /** The daemon's version. */
  readonly version: string;
  /** The daemon's own options, validated and typed. */
  readonly options: OptionValues<S>;
  /** The library's options (pidfile, log file, timeouts, …), resolved. */
  readonly core: Readonly<CoreOptions>;
  /** `true` when started with `start`, `false` under `run`. */
  readonly detached: boolean;
  /**
   * 1 for a daemon started by `start` or `run`; n + 1 for the generation
   * that `upgrade` started while generation n kept serving. A later
   * generation shares its listening ports with the one it replaces
   * (see {@linkcode DaemonContext.serve}).
   */
  readonly generation: number;
  /**
   * `Deno.serve` for a TCP port that `upgrade` can hand over without
   * refusing a connection: every generation binds it with `SO_REUSEPORT`
   * (Linux; needs `--unstable-net`, which the template's deno.json sets),
   * and a first generation first checks that nobody holds the port, so
   * that a port in use still fails with "address in use". `signal`
   * defaults to `ctx.signal`.
   *
   * @param options `Deno.serve`'s TCP options.
   * @param handler The request handler.
   * @returns The server.
   */
  serve(
    options: Deno.ServeTcpOptions,
    handler: Deno.ServeHandler<Deno.NetAddr>,
  ): Deno.HttpServer<Deno.NetAddr>;
  /** Aborted when the daemon is asked to stop (SIGTERM, SIGINT). */
  readonly signal: AbortSignal;
  /** The daemon's logger: the log file when detached, stderr under `run`. */
  readonly log: DaemonLogger;
  /**
   * Say the service is ready. `start` returns only after this; call it once
   * the service answers (e.g. after the listener is bound). Called from
   * `prepare`, it counts once privileges are dropped.
   */
  ready(): void;
  /** Tell the service manager what the daemon is doing (`STATUS=` for systemd). */
  status(text: string): void;
  /** Ask the service manager for more time to start, reload or stop (`EXTEND_TIMEOUT_USEC`). */
  extendTimeout(seconds: number): void;
  /**
   * Run `handler` on every reload (SIGHUP, the `reload` command), after the
   * log file is reopened and after the definition's `reload` hook. Call it
   * from `main` (or `prepare`), so the handler reaches their state through
   * its closure. Handlers run one at a time, in the order they were
   * registered; the first that throws ends the reload, and `reload` reports
   * its message. The daemon keeps running either way.
   *
   * @param handler What a reload does; throw (or reject) to report failure.
   */
  onReload(handler: () => void | Promise<void>): void;
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
  /**
   * Runs before `main`, with the privileges the daemon was started with. A
   * stop requested meanwhile aborts `ctx.signal`; once `prepare` returns,
   * the daemon then stops without running `main`.
   */
  prepare?(ctx: DaemonContext<S>): void | Promise<void>;
  /**
   * The service. Call `ctx.ready()` once it answers, and return (or resolve)
   * after `ctx.signal` is aborted and everything is shut down. An error
   * thrown here before `ready()` makes `start` fail with its message.
   *
   * Returning earlier does not end the daemon while work is left (a server
   * started without `await`, a timer): it runs until stopped, or until
   * nothing is left to run, and may still call `ctx.ready()` meanwhile. A
   * daemon left with nothing to run before `ctx.ready()` fails to start.
   * `Deno.serve`, `Deno.listen` and `Deno.listenTls` errors name the
   * address; a port below the unprivileged limit refused after the
   * privilege drop makes `start` exit 4.
   */
  main(ctx: DaemonContext<S>): void | Promise<void>;
  /**
   * Runs on SIGHUP (and `reload`) after the log file is reopened, before the
   * handlers registered with `ctx.onReload`; throw to report failure. It
   * cannot reach the state of `main`: a reload that needs it (a
   * configuration `main` serves with) is registered there with
   * `ctx.onReload`.
   */
  reload?(ctx: DaemonContext<S>): void | Promise<void>;
}

/** A defined daemon, ready to run its command line. */
export interface Daemon<S extends OptionSpecs = OptionSpecs> {
  /** The definition it was made from. */
  readonly definition: DaemonDefinition<S>;
  /**
   * Run the command line (`start`, `stop`, `status`, `run`, …) and exit the
   * process with its exit code. It settles only when a daemon's `main`
   * returned without a stop request while the daemon runs on (a server
   * started without `await`): the process then exits by itself once
   * stopped, or once nothing is left to run.
   *
   * @param args The arguments, `Deno.args` by default.
   */
  cli(args?: readonly string[]): Promise<void>;
}
