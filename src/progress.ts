/**
 * A one-line progress indicator for the commands that wait on a daemon
 * (`start`, `restart`, `stop`): shown only when stderr is a terminal, only
 * once the wait has lasted a while, rewritten in place each second, and
 * cleared before the command's own message.
 *
 * @module
 */
import { everyUnreferenced, type Timer, unreferenced } from "./timer.ts";

/** How long a wait lasts before it is shown, and how often it is redrawn. */
const SHOW_AFTER_MS = 2000;
const EVERY_MS = 1000;

const encoder = new TextEncoder();

/** Where the line goes: stderr, unless a test passes its own. */
export interface ProgressOutput {
  isTerminal(): boolean;
  writeSync(data: Uint8Array): number;
}

function writeAll(out: ProgressOutput, text: string): void {
  try {
    let data = encoder.encode(text);
    while (data.length > 0) data = data.subarray(out.writeSync(data));
  } catch {
    // A terminal that went away: the wait goes on without its line.
  }
}

/**
 * Await `work`, showing "`what`… N s" on the terminal while it lasts.
 *
 * @param what What is awaited, e.g. `"Waiting for myd to be ready"`.
 * @param work The wait.
 * @param out The terminal (stderr by default); nothing is written unless it is one.
 * @returns What `work` resolves to; its rejection passes through.
 *
 * @example
 * ```ts
 * import { withProgress } from "./progress.ts";
 * const n = await withProgress("Waiting", Promise.resolve(3));
 * console.log(n); // 3
 * ```
 */
export async function withProgress<T>(
  what: string,
  work: Promise<T>,
  out: ProgressOutput = Deno.stderr,
): Promise<T> {
  if (!out.isTerminal()) return await work;
  const startedAt = performance.now();
  let shown = 0;
  const draw = () => {
    const seconds = Math.floor((performance.now() - startedAt) / 1000);
    const line = `${what}… ${seconds} s`;
    // Spaces, not an erase sequence: any terminal understands them.
    writeAll(out, `\r${line}${" ".repeat(Math.max(0, shown - line.length))}`);
    shown = line.length;
  };
  let timer: Timer | undefined;
  const first = unreferenced(SHOW_AFTER_MS, () => {
    draw();
    timer = everyUnreferenced(EVERY_MS, draw);
  });
  try {
    return await work;
  } finally {
    first.cancel();
    timer?.cancel();
    if (shown > 0) writeAll(out, `\r${" ".repeat(shown)}\r`);
  }
}
