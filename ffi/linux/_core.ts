/**
 * What every Linux concern builds on: the `open(2)` flags and errno values
 * they share, C strings, and {@linkcode Core}: the bound symbols, errno, and
 * the checks that turn a failed call into a {@linkcode SysError}.
 *
 * @module
 */
import { type ErrnoName, SysError } from "../types.ts";
import {
  type Bound,
  LIBRARY,
  SymbolCache,
  type SymbolName,
  SYMBOLS,
} from "./_symbols.ts";

/** Linux values that differ by architecture. */
const ARCH = {
  x86_64: { O_DIRECTORY: 0o200000, O_NOFOLLOW: 0o400000 },
  aarch64: { O_DIRECTORY: 0o40000, O_NOFOLLOW: 0o100000 },
} as const;

/** Open for reading only. */
export const O_RDONLY = 0;
/** Open for writing only. */
export const O_WRONLY = 0o1;
/** Open for reading and writing. */
export const O_RDWR = 0o2;
/** Create the file when it does not exist. */
export const O_CREAT = 0o100;
/** With `O_CREAT`: fail when the name exists. */
export const O_EXCL = 0o200;
/** Do not make a terminal the controlling one. */
export const O_NOCTTY = 0o400;
/** Write at the end. */
export const O_APPEND = 0o2000;
/** Never block, also not in the open of a FIFO or device. */
export const O_NONBLOCK = 0o4000;
/** Close on exec. */
export const O_CLOEXEC = 0o2000000;
/** A handle for walking and `fstat`, no access to the content. */
export const O_PATH = 0o10000000;

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

const encoder = new TextEncoder();

/**
 * A NUL-terminated copy of `s` for passing as `const char *`.
 *
 * @param s The string; it must not contain a NUL.
 * @returns Its UTF-8 bytes and a final NUL.
 * @throws {TypeError} When `s` contains a NUL byte.
 */
export function cstr(s: string): Uint8Array<ArrayBuffer> {
  if (s.includes("\0")) {
    throw new TypeError(`String contains a NUL byte: ${JSON.stringify(s)}`);
  }
  const bytes = encoder.encode(s);
  const out = new Uint8Array(bytes.length + 1);
  out.set(bytes);
  return out;
}

/**
 * Build a `char *const[]` from strings. The returned `keep` array owns the
 * string buffers: hold it until the call that uses the vector returns.
 *
 * @param strings The strings, in order.
 * @returns The NULL-terminated pointer vector and the buffers it points into.
 */
export function cvector(strings: string[]): {
  vector: BigUint64Array<ArrayBuffer>;
  keep: Uint8Array[];
} {
  const keep = strings.map(cstr);
  const vector = new BigUint64Array(keep.length + 1);
  keep.forEach((buf, i) => {
    vector[i] = BigInt(Deno.UnsafePointer.value(Deno.UnsafePointer.of(buf)));
  });
  return { vector, keep };
}

/** libc opened for one {@linkcode Libc}, with errno and the error checks. */
export class Core {
  /** `O_NOFOLLOW` on this architecture. */
  readonly O_NOFOLLOW: number;
  readonly #symbols = new SymbolCache(LIBRARY, SYMBOLS);
  readonly #errno: Deno.UnsafePointerView | null;

  /**
   * Open libc and take this thread's errno address.
   *
   * @throws {Error} On an architecture whose flag values are not known.
   */
  constructor() {
    const arch = ARCH[Deno.build.arch as keyof typeof ARCH];
    if (arch === undefined) {
      throw new Error(
        `Linux on ${JSON.stringify(Deno.build.arch)} is not supported`,
      );
    }
    this.O_NOFOLLOW = arch.O_NOFOLLOW;
    // errno is read through a view made once: binding a symbol later, or any
    // other call between the failing one and the read, may overwrite errno.
    // Synchronous calls all run on this thread, so its errno address holds.
    const errnoAt = this.symbol("__errno_location")();
    this.#errno = errnoAt === null ? null : new Deno.UnsafePointerView(errnoAt);
  }

  /**
   * The libc symbol `name`, bound on first use.
   *
   * @param name A name declared in {@linkcode SYMBOLS}.
   * @returns The bound function (or value) with its declared types.
   */
  symbol<N extends SymbolName>(name: N): Bound<N> {
    return this.#symbols.get(name);
  }

  /**
   * This thread's errno, as the last failed call left it.
   *
   * @returns The value.
   */
  errno(): number {
    return this.#errno === null ? 0 : this.#errno.getInt32();
  }

  /**
   * A {@linkcode SysError} for a failed call.
   *
   * @param syscall The libc function that failed.
   * @param object What it was called on, or `""`.
   * @param code The errno value.
   * @returns The error, with `strerror(code)` as its reason.
   */
  sysError(syscall: string, object: string, code: number): SysError {
    const p = this.symbol("strerror")(code);
    const reason = p === null
      ? `errno ${code}`
      : Deno.UnsafePointerView.getCString(p);
    return new SysError(syscall, object, code, errnoName(code), reason);
  }

  /**
   * Run `call` until it does not fail with `EINTR`; throw on -1.
   *
   * @param syscall The libc function `call` makes, for the error.
   * @param object What it is called on, for the error.
   * @param call The call.
   * @returns What `call` returned.
   * @throws {SysError} When `call` returns -1 for another reason.
   */
  check<T extends number | bigint>(
    syscall: string,
    object: string,
    call: () => T,
  ): T {
    for (;;) {
      const r = call();
      if (Number(r) !== -1) return r;
      const e = this.errno();
      if (e !== ERRNO.EINTR) throw this.sysError(syscall, object, e);
    }
  }

  /**
   * Throw for a nonzero return of a function that returns an error number.
   *
   * @param syscall The libc function, for the error.
   * @param object What it was called on, for the error.
   * @param rc What it returned.
   * @throws {SysError} When `rc` is not 0.
   */
  checkRc(syscall: string, object: string, rc: number): void {
    if (rc !== 0) throw this.sysError(syscall, object, rc);
  }
}
