/**
 * Wording shared by the commands' messages.
 *
 * @module
 */

/** `"1 restart"`, `"2 restarts"`. */
export function plural(n: number, word: string): string {
  return `${n} ${word}${n === 1 ? "" : "s"}`;
}

/** `3725` → `"1h 2m 5s"`. */
export function formatDuration(seconds: number): string {
  const d = Math.floor(seconds / 86400);
  const h = Math.floor(seconds / 3600) % 24;
  const m = Math.floor(seconds / 60) % 60;
  const s = seconds % 60;
  const parts = [[d, "d"], [h, "h"], [m, "m"], [s, "s"]] as const;
  const shown = parts.filter(([n], i) => n > 0 || i === 3);
  return shown.map(([n, u]) => `${n}${u}`).join(" ");
}

/** `"5s ago"`, or `"at an unknown time"`. */
export function ago(at: number | undefined): string {
  if (at === undefined) return "at an unknown time";
  return `${
    formatDuration(Math.max(0, Math.round((Date.now() - at) / 1000)))
  } ago`;
}
