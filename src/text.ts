/**
 * Text that reaches a terminal from somewhere less trusted than the caller
 * (a daemon's state, a payload's error message).
 *
 * @module
 */

/**
 * `text` as one printable line: control characters (newlines and terminal
 * escapes included) become visible `\xNN` escapes, and it is cut at `max`.
 *
 * @example
 * ```ts
 * import { printable } from "./text.ts";
 * console.log(printable("bad\n\u001b[31mthing")); // bad\x0a\x1b[31mthing
 * ```
 */
export function printable(text: string, max = 1000): string {
  const out = text.replace(
    // deno-lint-ignore no-control-regex
    /[\u0000-\u001f\u007f-\u009f]/g,
    (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, "0")}`,
  );
  return out.length > max ? `${out.slice(0, max)}…` : out;
}
