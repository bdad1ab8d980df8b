/**
 * Log records that could not be written: a syslog that stopped reading, a
 * full disk. Logging never blocks and never kills, so such records are
 * dropped; this counts them, per process, so that the process can say so
 * once per episode where it still can, and `status` can show how many.
 *
 * @module
 */
import { SysError } from "../ffi/mod.ts";
import { type Timer, unreferenced } from "./timer.ts";

/** Where records go. */
export type Destination = "syslog" | "log file";

/** A run of failures at one destination: why the first one failed, and how many records were lost. */
export interface Episode {
  /** The first failure's reason, e.g. `"No space left on device"`. */
  reason: string;
  /** Records lost since. */
  count: number;
}

/**
 * The drop counter of one process.
 *
 * @example Once per episode
 * ```ts
 * import { DroppedRecords } from "./dropped.ts";
 * const dropped = new DroppedRecords();
 * console.log(dropped.drop("syslog", "Resource temporarily unavailable")); // true: say so
 * console.log(dropped.drop("syslog", "Resource temporarily unavailable")); // false: counted only
 * console.log(dropped.delivered("syslog")); // { reason: "Resource temporarily unavailable", count: 2 }
 * console.log(dropped.total); // 2
 * ```
 */
export class DroppedRecords {
  #total = 0;
  #episodes = new Map<Destination, Episode>();
  #publish?: (total: number) => void;
  #publishMs = 1000;
  #timer?: Timer;

  /** Records lost so far, at every destination. */
  get total(): number {
    return this.#total;
  }

  /**
   * Count one record that `to` did not take.
   *
   * @param to Where it was going.
   * @param reason Why it failed (kept for the first one of an episode).
   * @returns `true` for the first record of an episode: the caller says so,
   * once, where it still can.
   */
  drop(to: Destination, reason: string): boolean {
    this.#total++;
    this.#schedule();
    const episode = this.#episodes.get(to);
    if (episode !== undefined) {
      episode.count++;
      return false;
    }
    this.#episodes.set(to, { reason, count: 1 });
    return true;
  }

  /**
   * Note that `to` took a record.
   *
   * @returns The episode this ends, for the caller to report, or `null`.
   */
  delivered(to: Destination): Episode | null {
    // Called for every record written: nothing to look up while all is well.
    if (this.#episodes.size === 0) return null;
    const episode = this.#episodes.get(to);
    if (episode === undefined) return null;
    this.#episodes.delete(to);
    return episode;
  }

  /** Whether `to` is failing now. */
  failing(to: Destination): boolean {
    return this.#episodes.has(to);
  }

  /**
   * Have `publish(total)` called at most once every `ms` while records are
   * being dropped, from a timer that never keeps the process alive, and
   * never once per record.
   */
  publishEvery(ms: number, publish: (total: number) => void): void {
    this.#publish = publish;
    this.#publishMs = ms;
    if (this.#total > 0) this.#schedule();
  }

  #schedule(): void {
    if (this.#publish === undefined || this.#timer !== undefined) return;
    this.#timer = unreferenced(this.#publishMs, () => {
      this.#timer = undefined;
      this.#publish?.(this.#total);
    });
  }
}

/** `"1 log record"`, `"12 log records"`. */
export function records(n: number): string {
  return `${n} log record${n === 1 ? "" : "s"}`;
}

/**
 * The reason of a failed write: `strerror`'s text, without the runtime's
 * `(os error N)` suffix.
 */
export function failureReason(err: unknown): string {
  if (err instanceof SysError) return err.reason;
  const text = err instanceof Error ? err.message : String(err);
  return text.replace(/ \(os error \d+\)$/, "");
}

/** What {@linkcode guardConsole} reports. */
export interface ConsoleGuard {
  /** A `console.*` write failed (the error was swallowed). */
  failed(err: Error): void;
  /** A `console.*` call wrote without failing. */
  delivered(): void;
}

const GUARDED = Symbol("denod.consoleGuard");
type Guarded = Console & { [GUARDED]?: { guard: ConsoleGuard } };

/**
 * Make `console.*` never throw into the payload over a failed write: Deno's
 * console throws the write's error (`ENOSPC` on a full disk) out of
 * `console.log`. Such errors are handed to `guard` and swallowed; anything
 * else (a custom inspect function that throws) still reaches the caller.
 * Calling it again only replaces the guard.
 *
 * Deno offers no hook into its console's output (its `Console` class and
 * print function are internal), so the methods are wrapped in place.
 */
export function guardConsole(guard: ConsoleGuard, target = console): void {
  const c = target as Guarded;
  const existing = c[GUARDED];
  if (existing !== undefined) {
    existing.guard = guard;
    return;
  }
  const state = { guard };
  c[GUARDED] = state;
  const methods = c as unknown as Record<string, unknown>;
  for (const name of Object.keys(c)) {
    const original = methods[name];
    if (typeof original !== "function") continue;
    methods[name] = function (this: unknown, ...args: unknown[]) {
      let result: unknown;
      try {
        result = original.apply(this, args);
      } catch (err) {
        if (!isWriteError(err)) throw err;
        state.guard.failed(err);
        return undefined;
      }
      state.guard.delivered();
      return result;
    };
  }
}

/** An error from the runtime's write to descriptor 1 or 2: it names an errno code and says `(os error N)`. */
function isWriteError(err: unknown): err is Error {
  return err instanceof Error &&
    typeof (err as { code?: unknown }).code === "string" &&
    / \(os error \d+\)$/.test(err.message);
}
