/**
 * Open descriptors: reading, writing, closing, duplicating, pipes and
 * memfds.
 *
 * @module
 */
import type { Libc } from "../types.ts";
import { type Core, cstr, ERRNO, O_CLOEXEC } from "./_core.ts";
import { waitAnyReadable } from "./_poll.ts";

const F_GETFD = 1;
const F_SETFD = 2;
const FD_CLOEXEC = 1;
const MFD_CLOEXEC = 1;
const POLLERR = 8;

/** The functions of {@linkcode Libc} that work on open descriptors. */
export type Descriptors = Pick<
  Libc,
  | "close"
  | "readAsync"
  | "waitReadable"
  | "write"
  | "replace"
  | "readAll"
  | "readBounded"
  | "readAt"
  | "readerGone"
  | "pipe"
  | "dup2"
  | "setCloexec"
  | "memfd"
>;

/**
 * The Linux descriptor functions.
 *
 * @param c The shared core.
 * @returns Them, for {@linkcode Libc}.
 */
export function descriptors(c: Core): Descriptors {
  return {
    waitReadable: (fds, timeoutMs) => waitAnyReadable(c, fds, timeoutMs),
    close(fd) {
      // close(2) must not be retried on EINTR: the descriptor is gone either way.
      if (c.symbol("close")(fd) === -1) {
        const e = c.errno();
        if (e !== ERRNO.EINTR) throw c.sysError("close", `fd ${fd}`, e);
      }
    },
    async readAsync(fd, max) {
      const buf = new Uint8Array(max);
      // errno is lost on the worker thread; -1 here is reported as a plain failure.
      const n = Number(await c.symbol("read_async")(fd, buf, BigInt(max)));
      if (n < 0) throw new Error(`read of fd ${fd} failed`);
      return buf.subarray(0, n);
    },
    write(fd, data) {
      const write = c.symbol("write");
      writeAll(
        c,
        "write",
        fd,
        data,
        (chunk) => write(fd, chunk, BigInt(chunk.length)),
      );
    },
    replace: (fd, data) => replace(c, fd, data),
    readAll: (fd) => readUpTo(c, fd, Infinity)!,
    readBounded: (fd, max) => readUpTo(c, fd, max),
    readAt(fd, offset, max) {
      const buf = new Uint8Array(max);
      const n = Number(c.check(
        "pread",
        `fd ${fd}`,
        () => c.symbol("pread")(fd, buf, BigInt(max), BigInt(offset)),
      ));
      return buf.subarray(0, n);
    },
    readerGone(fd) {
      const pfd = new Uint8Array(8);
      const v = new DataView(pfd.buffer);
      v.setInt32(0, fd, true);
      // No events asked: POLLERR is reported anyway.
      const n = c.check(
        "poll",
        `fd ${fd}`,
        () => c.symbol("poll_now")(pfd, 1n, 0),
      );
      return n > 0 && (v.getInt16(6, true) & POLLERR) !== 0;
    },
    pipe() {
      const fds = new Int32Array(2);
      c.check("pipe2", "", () => c.symbol("pipe2")(fds, O_CLOEXEC));
      return [fds[0], fds[1]];
    },
    dup2(fd, target) {
      c.check("dup2", `fd ${fd}`, () => c.symbol("dup2")(fd, target));
    },
    setCloexec(fd, on) {
      const fcntl = c.symbol("fcntl");
      const flags = c.check("fcntl", `fd ${fd}`, () => fcntl(fd, F_GETFD, 0));
      const next = on ? flags | FD_CLOEXEC : flags & ~FD_CLOEXEC;
      c.check("fcntl", `fd ${fd}`, () => fcntl(fd, F_SETFD, next));
    },
    memfd: (name, data) => memfd(c, name, data),
  };
}

/**
 * The file's bytes from offset 0, read with `pread(2)`.
 *
 * @param c The shared core.
 * @param fd A descriptor on the file.
 * @param max The most bytes wanted.
 * @returns The bytes, or `null` when the file holds more than `max`.
 * @throws {SysError} When `pread` fails.
 */
export function readUpTo(c: Core, fd: number, max: number): Uint8Array | null {
  const pread = c.symbol("pread");
  const parts: Uint8Array[] = [];
  let off = 0;
  for (;;) {
    if (off > max) return null;
    const buf = new Uint8Array(4096);
    const n = Number(c.check(
      "pread",
      `fd ${fd}`,
      () => pread(fd, buf, BigInt(buf.length), BigInt(off)),
    ));
    if (n === 0) break;
    parts.push(buf.subarray(0, n));
    off += n;
  }
  const out = new Uint8Array(off);
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

/** `pwrite(2)` all of `data` at offset 0, then cut the file after it. */
function replace(c: Core, fd: number, data: Uint8Array): void {
  const pwrite = c.symbol("pwrite");
  writeAll(
    c,
    "pwrite",
    fd,
    data,
    (chunk, off) => pwrite(fd, chunk, BigInt(chunk.length), BigInt(off)),
  );
  c.check(
    "ftruncate",
    `fd ${fd}`,
    () => c.symbol("ftruncate")(fd, BigInt(data.length)),
  );
}

/** A memfd named `name` holding `data`. */
function memfd(c: Core, name: string, data: Uint8Array): number {
  const n = cstr(name);
  const fd = c.check(
    "memfd_create",
    name,
    () => c.symbol("memfd_create")(n, MFD_CLOEXEC),
  );
  try {
    replace(c, fd, data);
  } catch (err) {
    c.symbol("close")(fd);
    throw err;
  }
  return fd;
}

/** Write all of `data` with `call`, resuming after short writes. */
function writeAll(
  c: Core,
  syscall: string,
  fd: number,
  data: Uint8Array,
  call: (chunk: Uint8Array, offset: number) => number | bigint,
): void {
  let off = 0;
  while (off < data.length) {
    const chunk = data.subarray(off);
    off += Number(c.check(syscall, `fd ${fd}`, () => call(chunk, off)));
  }
}
