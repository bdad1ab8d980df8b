/**
 * denod: write a Unix daemon in TypeScript, ship it as one executable.
 *
 * Declare the daemon with {@linkcode defineDaemon}; its `cli()` gives the
 * program `start` (detach, locked pidfile, return once ready), `stop`,
 * `restart`, `status`, `reload` and `run` (foreground).
 *
 * For programs that control a daemon from code of their own, the control
 * commands are functions of the pidfile's path: {@linkcode stop},
 * {@linkcode status}, {@linkcode reload} and {@linkcode inspectPidfile};
 * {@linkcode Pidfile} is the locked pidfile itself. Starting is `cli()`'s
 * alone: `start` re-executes the running program with its own argv, and the
 * re-executed process must reach `daemon.cli()` with that same command line.
 *
 * Processes are created and signalled with libc (`posix_spawn`,
 * `pidfd_send_signal`) through FFI, so the program needs `--allow-ffi`,
 * which in effect grants every permission.
 *
 * @example A daemon that says ready and waits to be stopped
 * ```ts
 * import { defineDaemon } from "./mod.ts";
 *
 * const daemon = defineDaemon({
 *   name: "hello",
 *   version: "1.0.0",
 *   async main(ctx) {
 *     ctx.log.info("Hello from pid {pid}", { pid: Deno.pid });
 *     ctx.ready();
 *     await new Promise((done) => ctx.signal.addEventListener("abort", done));
 *   },
 * });
 * if (import.meta.main) await daemon.cli();
 * ```
 *
 * @module
 */
export {
  type Daemon,
  type DaemonContext,
  type DaemonDefinition,
  type DaemonLogger,
  defineDaemon,
  type ErrorLogMethod,
  type LogMethod,
} from "./src/define.ts";
export type {
  CoreOptions,
  LogLevel,
  OptionSpec,
  OptionSpecs,
  OptionValue,
  OptionValues,
  RestartPolicy,
} from "./src/options.ts";
export { DaemonError, Exit, StatusExit, UsageError } from "./src/errors.ts";
export {
  inspectPidfile,
  Pidfile,
  type PidfileState,
  reload,
  type ReloadOptions,
  type ReloadResult,
  status,
  type StatusOptions,
  stop,
  type StopOptions,
} from "./src/api.ts";
export type {
  StatusCode,
  StatusReport,
  StatusResult,
  StopResult,
} from "./src/control.ts";
export { PidfileLockedError } from "./src/pidfile.ts";
export { helpText, versionText } from "./src/cli.ts";
export { type ErrnoName, SysError } from "./ffi/mod.ts";
