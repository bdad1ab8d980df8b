/**
 * Errors callers are meant to catch, each carrying the exit code the CLI
 * reports for it (LSB init-script actions).
 *
 * @module
 */

/** LSB exit codes for start/stop/restart/reload. */
export const Exit = {
  OK: 0,
  FAILURE: 1,
  USAGE: 2,
  PRIVILEGE: 4,
  NOT_RUNNING: 7,
} as const;

/** LSB exit codes for `status`. */
export const StatusExit = {
  RUNNING: 0,
  DEAD_WITH_PIDFILE: 1,
  NOT_RUNNING: 3,
  UNKNOWN: 4,
} as const;

/**
 * A mistake in the command line: the CLI prints it with the usage and exits 2.
 *
 * @example
 * ```ts
 * import { UsageError } from "./errors.ts";
 * const err = new UsageError('Unknown command "strat"');
 * console.log(err.exitCode); // 2
 * ```
 */
export class UsageError extends Error {
  /** Always 2. */
  readonly exitCode: typeof Exit.USAGE = Exit.USAGE;
  /**
   * A usage error with its message.
   *
   * @param message What is wrong, naming the value.
   */
  constructor(message: string) {
    super(message);
    this.name = "UsageError";
  }
}

/**
 * A failure the CLI reports as one line, with its own exit code.
 *
 * @example
 * ```ts
 * import { DaemonError, Exit } from "./errors.ts";
 * const err = new DaemonError("Not running", Exit.NOT_RUNNING);
 * console.log(err.exitCode); // 7
 * ```
 */
export class DaemonError extends Error {
  /** The process exit code for this failure. */
  readonly exitCode: number;
  /**
   * A failure with its message and exit code.
   *
   * @param message One line, sentence case, no trailing period.
   * @param exitCode The exit code, {@linkcode Exit.FAILURE} by default.
   * @param options `cause`, when another error led to this one.
   */
  constructor(
    message: string,
    exitCode: number = Exit.FAILURE,
    options?: ErrorOptions,
  ) {
    super(message, options);
    this.name = "DaemonError";
    this.exitCode = exitCode;
  }
}

/**
 * Route every uncaught error and unhandled rejection to `handler` instead of
 * the runtime's default (a stack trace on stderr and exit 1).
 */
export function catchUncaught(handler: (err: unknown) => void): void {
  globalThis.addEventListener("error", (e) => {
    e.preventDefault();
    handler(e.error);
  });
  globalThis.addEventListener("unhandledrejection", (e) => {
    e.preventDefault();
    handler(e.reason);
  });
}
