/**
 * The OS seam: {@linkcode libc} returns the implementation for the running
 * OS, or throws a clear "not supported" error.
 *
 * @module
 */
import { linuxLibc } from "./linux/mod.ts";
import type { Libc } from "./types.ts";

export type {
  BpfInstruction,
  ErrnoName,
  ExitStatus,
  FileStat,
  FileType,
  GroupEntry,
  Libc,
  OpenAtFlags,
  ProcessView,
  SpawnFd,
  SpawnRequest,
  UserEntry,
} from "./types.ts";
export { SysError } from "./types.ts";

const IMPLEMENTATIONS: Partial<Record<typeof Deno.build.os, () => Libc>> = {
  linux: linuxLibc,
};

let instance: Libc | undefined;

/**
 * The libc functions for this OS, loaded once.
 *
 * Needs `--allow-ffi`, which in effect grants every permission.
 *
 * @returns The implementation for `Deno.build.os`.
 * @throws {Error} On an OS without an implementation.
 *
 * @example Reading this process's pid
 * ```ts
 * import { libc } from "./mod.ts";
 * console.log(libc().getpid() === Deno.pid); // true
 * ```
 */
export function libc(): Libc {
  if (instance !== undefined) return instance;
  const make = IMPLEMENTATIONS[Deno.build.os];
  if (make === undefined) {
    throw new Error(`denod is not supported on ${Deno.build.os}`);
  }
  instance = make();
  return instance;
}
