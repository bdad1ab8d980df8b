/**
 * What every Linux concern builds on: the bound symbols, errno, and the
 * checks that turn a failed call into a {@linkcode SysError}.
 *
 * @module
 */
import { SysError } from "../types.ts";
import { ERRNO, errnoName } from "./_errno.ts";
import { ARCH } from "./_flags.ts";
import {
  type Bound,
  LIBRARY,
  SymbolCache,
  type SymbolName,
  SYMBOLS,
} from "./_symbols.ts";

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
