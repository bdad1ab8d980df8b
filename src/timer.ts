/**
 * Timers that do not load Deno's Node layer. In Deno 2.9 the global
 * `setTimeout` loads `node:timers` (and with it ~20 internal Node modules) on
 * first use: ~4 ms and ~3 MB of RSS in every process that arms one
 * (measured). `AbortSignal.timeout` runs on the runtime's own web timers;
 * while an "abort" listener is attached the timer keeps the process alive,
 * and once it is removed it no longer does. A listened-to web timer cannot
 * be unreferenced, so the few timers that must not keep the process alive
 * ({@linkcode unreferenced}, {@linkcode everyUnreferenced}) stay on
 * `setTimeout` + `Deno.unrefTimer`, on rare paths only: dropped log records,
 * a syslog backlog, the systemd watchdog, a progress line, and a daemon
 * whose `main()` has returned (its stop deadline, its supervisor's lifeline).
 *
 * @module
 */

/** A pending call, until it runs or is cancelled. */
export interface Timer {
  /** Drop the call; the timer no longer keeps the process alive. */
  cancel(): void;
}

/**
 * Call `fn` once after `ms` milliseconds. The pending timer keeps the process
 * alive, like `setTimeout`.
 *
 * @example
 * ```ts
 * import { after } from "./timer.ts";
 * const timer = after(60_000, () => console.log("late"));
 * timer.cancel();
 * ```
 */
export function after(ms: number, fn: () => void): Timer {
  const signal = AbortSignal.timeout(delay(ms));
  const listener = () => fn();
  signal.addEventListener("abort", listener, { once: true });
  return { cancel: () => signal.removeEventListener("abort", listener) };
}

/** Resolve after `ms` milliseconds, or as soon as `signal` aborts. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  if (signal === undefined) return new Promise((resolve) => after(ms, resolve));
  return new Promise((resolve) => {
    const done = () => {
      timer.cancel();
      signal.removeEventListener("abort", done);
      resolve();
    };
    const timer = after(ms, done);
    signal.addEventListener("abort", done, { once: true });
  });
}

/**
 * `promise`'s value, or `undefined` when it has not settled within `ms`
 * milliseconds; the timer is gone either way.
 */
export async function within<T>(
  promise: Promise<T>,
  ms: number,
): Promise<T | undefined> {
  let timer: Timer | undefined;
  try {
    return await Promise.race([
      promise,
      new Promise<undefined>((r) => timer = after(ms, () => r(undefined))),
    ]);
  } finally {
    timer?.cancel();
  }
}

// `AbortSignal.timeout` takes a whole, finite, non-negative count.
function delay(ms: number): number {
  return Math.min(Math.max(0, Math.ceil(ms)), 2 ** 31 - 1);
}

/**
 * Call `fn` once after `ms` milliseconds, without keeping the process alive
 * for it (on `setTimeout`: see the module's note on its cost).
 */
export function unreferenced(ms: number, fn: () => void): Timer {
  const id = setTimeout(fn, ms);
  Deno.unrefTimer(id);
  return { cancel: () => clearTimeout(id) };
}

/** Call `fn` every `ms` milliseconds, without keeping the process alive for it. */
export function everyUnreferenced(ms: number, fn: () => void): Timer {
  const id = setInterval(fn, ms);
  Deno.unrefTimer(id);
  return { cancel: () => clearInterval(id) };
}
