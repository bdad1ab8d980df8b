/**
 * The readiness pipe between a detached daemon and the `start` command that
 * waits for it: one line per message, `KIND payload`.
 *
 * - `READY n`: the daemon n is ready; the pidfile is complete.
 * - `ERROR text`: start-up failed; the text is the daemon's own message.
 * - `EXIT n`: sent before `ERROR` when the failure is not exit 1 (so far
 *   only 4, a privilege problem); the reader accepts only codes it knows.
 * - `MAIN`: the payload's `main` is about to run (for "main has run for
 *   n s" when it is never ready).
 *
 * A detached daemon's payload holds the pipe too, so what comes through it
 * is the daemon's word: `start` learns pids from the pidfile, not from here.
 *
 * @module
 */
import type { Libc } from "../ffi/mod.ts";

/** A message kind. */
export type ReadinessKind = "READY" | "ERROR" | "EXIT" | "MAIN";

const KINDS: readonly string[] = ["READY", "ERROR", "EXIT", "MAIN"];
/** The longest line kept: the daemon side is not trusted to be brief. */
const MAX_LINE = 8192;

/** One parsed message. */
export interface ReadinessMessage {
  /** Its kind. */
  kind: ReadinessKind;
  /** Its payload: a pid or an error text. */
  text: string;
}

const encoder = new TextEncoder();

/** Write one message; the text is folded onto one line. Never throws. */
export function sendLine(
  libc: Libc,
  fd: number,
  kind: ReadinessKind,
  text: string,
): void {
  try {
    libc.write(
      fd,
      encoder.encode(`${kind} ${text.replace(/[\r\n]+/g, " ")}\n`),
    );
  } catch {
    // The waiting `start` is gone (EPIPE); nothing else to tell.
  }
}

/**
 * Report a start-up failure: its exit code (when not 1), then its text.
 * Never throws.
 */
export function sendError(
  libc: Libc,
  fd: number,
  code: number,
  text: string,
): void {
  if (code !== 1) sendLine(libc, fd, "EXIT", String(code));
  sendLine(libc, fd, "ERROR", text);
}

/** How long one wait for the pipe holds a thread, when the reading can be ended. */
const WAIT_MS = 1000;

/**
 * Read messages from the pipe until end of file, or until `until` aborts.
 *
 * @param libc The OS interface.
 * @param fd The read end.
 * @param until Ends the reading, even while no writer ends the pipe.
 * @yields Each message as it arrives.
 */
export async function* readMessages(
  libc: Libc,
  fd: number,
  until?: AbortSignal,
): AsyncGenerator<ReadinessMessage> {
  const decoder = new TextDecoder();
  let pending = "";
  for (;;) {
    // A blocked read holds one of the runtime's few threads (32) until
    // every writer is gone, and a process the daemon's user keeps can hold
    // the pipe for ever: waits of a bounded time give the thread back, and
    // the read comes only once it cannot block.
    if (until !== undefined) {
      while (!until.aborted && await libc.waitReadable([fd], WAIT_MS) < 0) {
        // nothing yet
      }
      if (until.aborted) return;
    }
    const chunk = await libc.readAsync(fd, 4096);
    if (chunk.length === 0) break;
    pending += decoder.decode(chunk, { stream: true });
    let nl: number;
    while ((nl = pending.indexOf("\n")) >= 0) {
      const line = pending.slice(0, nl);
      pending = pending.slice(nl + 1);
      const space = line.indexOf(" ");
      const kind = (space < 0 ? line : line.slice(0, space)) as ReadinessKind;
      if (KINDS.includes(kind)) {
        yield { kind, text: space < 0 ? "" : line.slice(space + 1) };
      }
    }
    // A line without its end yet is cut short (the rest of it is dropped
    // with the cut): the reader's memory stays bounded.
    if (pending.length > MAX_LINE) pending = pending.slice(0, MAX_LINE);
  }
}
