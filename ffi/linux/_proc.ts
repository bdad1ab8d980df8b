/**
 * Reading `/proc` through libc: Deno grants `/proc/self` only with
 * `--allow-all`, and a compiled daemon runs with fewer permissions.
 *
 * @module
 */
import { type Core, cstr, ERRNO } from "./_core.ts";
import { openPath } from "./files.ts";
import { readUpTo } from "./descriptors.ts";

/** `struct dirent` (glibc, 64-bit): d_ino, d_off, d_reclen, d_type, then d_name. */
const DIRENT_NAME_OFFSET = 19;

const decoder = new TextDecoder();

/**
 * A whole file under /proc, read with open(2) and pread(2).
 *
 * @param c The shared core.
 * @param path The file.
 * @returns Its bytes.
 * @throws {SysError} When it cannot be opened or read.
 */
export function readProc(c: Core, path: string): Uint8Array {
  const fd = openPath(c, path, {});
  try {
    return readUpTo(c, fd, Infinity)!;
  } finally {
    c.symbol("close")(fd);
  }
}

/**
 * The target of a symbolic link.
 *
 * @param c The shared core.
 * @param path The link.
 * @returns Its target, or `null` when `path` is no link or does not exist.
 * @throws {SysError} When it cannot be read for another reason.
 */
export function readlink(c: Core, path: string): string | null {
  const p = cstr(path);
  const buf = new Uint8Array(4096);
  const n = c.symbol("readlink")(p, buf, BigInt(buf.length));
  if (Number(n) === -1) {
    const e = c.errno();
    if (e === ERRNO.EINVAL || e === ERRNO.ENOENT) return null;
    throw c.sysError("readlink", path, e);
  }
  return decoder.decode(buf.subarray(0, Number(n)));
}

/**
 * The descriptor numbers in `/proc/<who>/fd`.
 *
 * @param c The shared core.
 * @param who A pid, or `"self"`.
 * @returns The numbers.
 * @throws {SysError} When the directory cannot be opened.
 */
export function listFds(c: Core, who: string): number[] {
  const path = `/proc/${who}/fd`;
  const dir = c.symbol("opendir")(cstr(path));
  if (dir === null) throw c.sysError("opendir", path, c.errno());
  const readdir = c.symbol("readdir");
  const fds: number[] = [];
  try {
    for (let e = readdir(dir); e !== null; e = readdir(dir)) {
      const name = Deno.UnsafePointerView.getCString(e, DIRENT_NAME_OFFSET);
      if (/^[0-9]+$/.test(name)) fds.push(Number(name));
    }
  } finally {
    c.symbol("closedir")(dir);
  }
  return fds;
}

/**
 * Process `pid`'s descriptor numbers.
 *
 * @param c The shared core.
 * @param pid The process.
 * @returns The numbers, or `null` when they cannot be read.
 */
export function fdsOf(c: Core, pid: number | "self"): number[] | null {
  try {
    return listFds(c, String(pid));
  } catch {
    return null;
  }
}

/**
 * open(2) that follows links (for /proc's descriptor links).
 *
 * @param c The shared core.
 * @param path The file.
 * @param flags The raw `open` flags.
 * @returns The descriptor, or -1 on failure.
 */
export function openRaw(c: Core, path: string, flags: number): number {
  const p = cstr(path);
  const open = c.symbol("open");
  for (;;) {
    const fd = open(p, flags, 0);
    if (fd !== -1 || c.errno() !== ERRNO.EINTR) return fd;
  }
}
