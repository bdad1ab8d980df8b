/**
 * denod: write a Unix daemon in TypeScript, ship it as one executable.
 *
 * Declare the daemon with {@linkcode defineDaemon}; its `cli()` gives the
 * program `start` (detach, locked pidfile, return once ready), `stop`,
 * `restart`, `status`, `reload` and `run` (foreground).
 *
 * The pieces are exported for programs with a CLI of their own: `start`,
 * `stop`, `status`, `reload` and `Pidfile` (`src/serve.ts` runs a payload;
 * it is not re-exported here because it loads the logger, and every process
 * that imports this module, down to the short-lived session leader, would
 * pay for it).
 * `start` re-executes the running program with its own argv, so the
 * program's entry point must still hand that re-executed process to
 * `daemon.cli()`, which recognises it before parsing anything. Processes are created
 * with libc `posix_spawn` through FFI, so the program needs `--allow-ffi`,
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
  defineDaemon,
} from "./src/define.ts";
export type {
  CoreOptions,
  OptionSpec,
  OptionSpecs,
  OptionValues,
} from "./src/options.ts";
export { DaemonError, Exit, StatusExit, UsageError } from "./src/errors.ts";
export {
  inspectPidfile,
  Pidfile,
  PidfileLockedError,
  type PidfileState,
} from "./src/pidfile.ts";
export { reload, status, stop } from "./src/control.ts";
export { terminate } from "./src/process.ts";
export { formatDuration } from "./src/words.ts";
export { start, type StartResult } from "./src/start.ts";
export { helpText, runCli, versionText } from "./src/cli.ts";
export { type Libc, libc, SysError } from "./ffi/mod.ts";
