/**
 * The FFI signatures pinned by type: `deno test` type-checks this file, and
 * each `@ts-expect-error` must stay an error, so a loosened `Libc` method
 * or symbol declaration fails here. The lines that would misbehave if run
 * sit in a function that is never called.
 */
import assert from "node:assert/strict";
import { type ErrnoName, type Libc, libc, SysError } from "../ffi/mod.ts";
import type { ProcessView } from "../ffi/types.ts";
import { ERRNO, errnoName } from "../ffi/linux/_core.ts";
import {
  type Bound,
  LIBRARY,
  SymbolCache,
  SYMBOLS,
} from "../ffi/linux/_symbols.ts";

/** `true` exactly when `A` and `B` are the same type. */
type Equal<A, B> = (<T>() => T extends A ? 1 : 2) extends
  (<T>() => T extends B ? 1 : 2) ? true : false;

/** Compiles only for a `true` type. */
function assertType<T extends true>(_ok: T): void {}

// Libc: what callers may pass and what they get back.
assertType<
  Equal<ReturnType<Libc["processView"]>, ProcessView | null>
>(true);
assertType<Equal<Parameters<Libc["openAt"]>[0], number | null>>(true);
assertType<Equal<ReturnType<Libc["pidfdWait"]>, Promise<boolean>>>(true);
assertType<Equal<SysError["code"], ErrnoName>>(true);

// The symbol cache: each bound symbol has its declaration's types.
assertType<Equal<Parameters<Bound<"flock">>, [number, number]>>(true);
assertType<
  Equal<
    Parameters<Bound<"openat">>,
    [number, AllowSharedBufferSource | null, number, number]
  >
>(true);
assertType<Equal<ReturnType<Bound<"poll">>, Promise<number>>>(true);
assertType<Equal<null extends Bound<"environ"> ? true : false, true>>(true);

// The errno table names every ErrnoName but the alias and the fallback.
assertType<
  Equal<keyof typeof ERRNO, Exclude<ErrnoName, "EWOULDBLOCK" | "UNKNOWN">>
>(true);

/** Calls that must not compile; never run. */
function _mustNotCompile(c: Libc, cache: SymbolCache<typeof SYMBOLS>): void {
  // @ts-expect-error: a name is a string, never a descriptor number
  c.openAt(null, 5, {});
  // @ts-expect-error: the directory is a descriptor or null, never a path
  c.openAt("/run", "x.pid", {});
  // @ts-expect-error: there is no flag that follows symlinks
  c.openAt(null, "x", { follow: true });
  // @ts-expect-error: the process may be gone
  const _view: ProcessView = c.processView(1);
  // @ts-expect-error: only signal names Deno knows
  c.pidfdSignal(3, "SIGFOO");
  // @ts-expect-error: a user is looked up by name or by id as a string
  c.lookupUser(0);
  // @ts-expect-error: codes are errno names, never raw numbers
  assert.ok(new SysError("open", "", 2, 2, "No such file"));
  // @ts-expect-error: no fork(): only declared symbols can be bound
  cache.get("fork");
  // @ts-expect-error: flock takes a descriptor number, not a string
  cache.get("flock")("3", 2);
  // @ts-expect-error: statx takes a buffer, not a string, for the path
  cache.get("statx")(-100, "/etc", 0, 0x7ff, new Uint8Array(256));
  // @ts-expect-error: an optional symbol may be missing: check for null first
  cache.get("posix_spawn_file_actions_addclosefrom_np")(new Uint8Array(8), 3);
}

Deno.test("`SymbolCache.get()` binds a declared symbol once and returns it typed", () => {
  const cache = new SymbolCache(LIBRARY, SYMBOLS);
  const getpid = cache.get("getpid");
  assert.equal(getpid(), Deno.pid);
  assert.equal(cache.get("getpid"), getpid, "the second get is the cached one");
  assert.equal(libc().getpid(), Deno.pid);
});

Deno.test("`errnoName()` names every value of the errno table back", () => {
  for (const [name, n] of Object.entries(ERRNO)) {
    assert.equal(errnoName(n), name);
  }
  assert.equal(errnoName(9999), "UNKNOWN");
});
