/**
 * Linux (glibc, x86_64 and aarch64) implementation of {@linkcode Libc}.
 *
 * The only code that knows glibc symbol names, flag values and struct
 * layouts, one file per concern, each built on the shared core in
 * `_core.ts`. Variadic functions (`open`, `fcntl`, `syscall`) are called
 * only because their calling convention matches the fixed one on these two
 * architectures.
 *
 * @module
 */
import type { Libc } from "../types.ts";
import { Core } from "./_core.ts";
import { descriptors } from "./descriptors.ts";
import { files } from "./files.ts";
import { identities } from "./identities.ts";
import { pidfds } from "./pidfds.ts";
import { processes } from "./processes.ts";
import { sockets } from "./sockets.ts";
import { spawning } from "./spawn.ts";

/**
 * Open libc and return the Linux implementation of {@linkcode Libc}.
 *
 * Needs `--allow-ffi`. Each libc symbol is bound on its first use.
 *
 * @returns A new implementation; {@linkcode libc} in `ffi/mod.ts` keeps one.
 * @throws {Error} On an architecture other than x86_64 and aarch64.
 *
 * @example Reading this process's pid
 * ```ts
 * import { linuxLibc } from "./mod.ts";
 * console.log(linuxLibc().getpid() === Deno.pid); // true
 * ```
 */
export function linuxLibc(): Libc {
  const c = new Core();
  return {
    ...spawning(c),
    ...files(c),
    ...descriptors(c),
    ...processes(c),
    ...pidfds(c),
    ...sockets(c),
    ...identities(c),
  };
}
