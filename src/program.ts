/**
 * This program as a command line that runs it again from anywhere: the
 * executable and, under `deno run`, its flags and the script, with absolute
 * paths. `unit` writes it into ExecStart=; `start` records it so that a later
 * command starts the program as it is then on disk.
 *
 * @module
 */
import { resolvePath } from "./options.ts";

/**
 * The words of `argv` before `args`, made absolute.
 *
 * @param argv This program's argv as the kernel has it.
 * @param args The arguments after the program (`Deno.args`).
 * @param cwd Where relative paths start.
 * @returns The executable, then (under `deno run`) its flags and the script.
 *
 * @example
 * ```ts
 * import { programCommand } from "./program.ts";
 * const argv = [Deno.execPath(), "run", "-A", "d.ts", "start"];
 * console.log(programCommand(argv, ["start"], "/srv").at(-1));
 * // /srv/d.ts (compiled: the executable alone)
 * ```
 */
export function programCommand(
  argv: readonly string[],
  args: readonly string[],
  cwd: string,
): string[] {
  const prefix = argv.slice(0, argv.length - args.length);
  prefix[0] = Deno.execPath();
  if (!Deno.build.standalone && prefix.length > 1) {
    // deno run [flags] SCRIPT: make the script absolute.
    const script = prefix[prefix.length - 1];
    if (!/^[a-z]+:/.test(script)) {
      prefix[prefix.length - 1] = resolvePath(cwd, script);
    }
  }
  return prefix;
}
