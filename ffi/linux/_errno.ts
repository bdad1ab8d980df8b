/**
 * Linux errno values by name, and the name of a value.
 *
 * @module
 */
import type { ErrnoName } from "../types.ts";

/**
 * Linux errno values by name: the only place their numbers appear. Every
 * name in {@linkcode ErrnoName} is here, so the two cannot drift apart;
 * `EWOULDBLOCK` is `EAGAIN` on Linux and is reported as `EAGAIN`.
 */
export const ERRNO = {
  EPERM: 1,
  ENOENT: 2,
  ESRCH: 3,
  EINTR: 4,
  ENXIO: 6,
  EBADF: 9,
  EAGAIN: 11,
  EACCES: 13,
  EEXIST: 17,
  ENOTDIR: 20,
  EISDIR: 21,
  EINVAL: 22,
  ENOSPC: 28,
  EROFS: 30,
  ENAMETOOLONG: 36,
  ENOSYS: 38,
  ELOOP: 40,
} as const satisfies Record<
  Exclude<ErrnoName, "EWOULDBLOCK" | "UNKNOWN">,
  number
>;

const NAMES = new Map<number, ErrnoName>(
  Object.entries(ERRNO).map(([name, n]) => [n, name as ErrnoName]),
);

/**
 * The name of an errno value.
 *
 * @param errno The value.
 * @returns Its name, or `"UNKNOWN"` for one the library does not name.
 */
export function errnoName(errno: number): ErrnoName {
  return NAMES.get(errno) ?? "UNKNOWN";
}
