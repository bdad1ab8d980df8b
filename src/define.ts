/**
 * Declaring a daemon: {@linkcode defineDaemon} checks a definition and
 * gives it its command line.
 *
 * @module
 */
import type { Daemon, DaemonDefinition } from "./definition.ts";
import type { OptionSpecs } from "./options.ts";
import { checkSpecs } from "./options.ts";
import { runCli } from "./cli.ts";

export type {
  Daemon,
  DaemonContext,
  DaemonDefinition,
  DaemonLogger,
  ErrorLogMethod,
  LogMethod,
} from "./definition.ts";

/**
 * Declare a daemon.
 *
 * @param definition Its name, version, options and hooks.
 * @returns The daemon, whose `cli()` is the program's entry point.
 * @throws {TypeError} For a name or option name that cannot be used.
 *
 * @example A minimal daemon
 * ```ts
 * import { defineDaemon } from "./define.ts";
 * const daemon = defineDaemon({
 *   name: "tick",
 *   version: "1.0.0",
 *   options: { every: { type: "integer", description: "Seconds", default: 5 } },
 *   async main(ctx) {
 *     const timer = setInterval(() => ctx.log.info("tick"), ctx.options.every * 1000);
 *     ctx.ready();
 *     await new Promise((resolve) => ctx.signal.addEventListener("abort", resolve));
 *     clearInterval(timer);
 *   },
 * });
 * console.log(daemon.definition.name); // tick
 * // if (import.meta.main) await daemon.cli();
 * ```
 */
export function defineDaemon<
  const S extends OptionSpecs = Record<never, never>,
>(
  definition: DaemonDefinition<S>,
): Daemon<S> {
  if (!/^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/.test(definition.name)) {
    throw new TypeError(
      `Daemon name ${
        JSON.stringify(definition.name)
      } must be 1 to 64 letters, digits, ".", "_" or "-"`,
    );
  }
  checkSpecs(definition.options ?? {});
  return {
    definition,
    cli: (args = Deno.args) => runCli(definition as DaemonDefinition, args),
  };
}
