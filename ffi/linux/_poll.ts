/**
 * Waiting for a descriptor to become readable without blocking the event
 * loop.
 *
 * @module
 */
import type { Core } from "./_core.ts";

const POLLIN = 1;

/**
 * poll(2) for POLLIN on another thread. An infinite timeout blocks that
 * thread in the kernel: no wake-ups until it happens.
 *
 * @param c The shared core.
 * @param fd The descriptor.
 * @param timeoutMs How long to wait; `Infinity` for ever.
 * @returns `true` once readable, `false` on timeout.
 */
export async function waitReadable(
  c: Core,
  fd: number,
  timeoutMs: number,
): Promise<boolean> {
  return (await waitAnyReadable(c, [fd], timeoutMs)) >= 0;
}

/**
 * {@linkcode waitReadable} for several descriptors at once.
 *
 * @returns The index in `fds` of the first one readable (or at its end, or
 * in error), or -1 on timeout.
 */
export async function waitAnyReadable(
  c: Core,
  fds: readonly number[],
  timeoutMs: number,
): Promise<number> {
  const pfd = new Uint8Array(8 * fds.length);
  const v = new DataView(pfd.buffer);
  fds.forEach((fd, i) => {
    v.setInt32(8 * i, fd, true);
    v.setInt16(8 * i + 4, POLLIN, true);
  });
  const poll = c.symbol("poll");
  for (;;) {
    const started = performance.now();
    const ms = timeoutMs === Infinity ? -1 : Math.max(0, Math.round(timeoutMs));
    const n = await poll(pfd, BigInt(fds.length), ms);
    if (n > 0) {
      return fds.findIndex((_, i) => v.getInt16(8 * i + 6, true) !== 0);
    }
    if (n === 0) return -1;
    // poll ran on another thread, so its errno is out of reach: the only
    // retryable failure is EINTR, so retry with the time that is left.
    timeoutMs -= performance.now() - started;
    if (timeoutMs <= 0) return -1;
  }
}
