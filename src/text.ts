/**
 * Text and control characters: text from a less trusted side (a payload's
 * error, a state file) made safe to print on one terminal line, values
 * quoted for messages, and the test for text that must stay on its line.
 *
 * @module
 */

/** Line breaks, with the blanks around them. */
const BREAKS = /\s*(?:\r\n|[\n\r\v\f\u0085\u2028\u2029])\s*/g;
/** ANSI escape sequences: CSI (colours, cursor moves) and OSC (titles, links). */
const ANSI =
  // deno-lint-ignore no-control-regex
  /\u001b\[[0-?]*[ -/]*[@-~]|\u009b[0-?]*[ -/]*[@-~]|(?:\u001b\]|\u009d)[^\u0007\u001b\u009c]*(?:\u0007|\u001b\\|\u009c)?/g;
/**
 * What a terminal would act on rather than show: C0, DEL, C1, and the
 * bidirectional formatting characters (Unicode's `Bidi_Control` property).
 */
const CONTROL =
  // deno-lint-ignore no-control-regex
  /[\u0000-\u001f\u007f-\u009f\p{Bidi_Control}]/gu;
/** C0 (NUL and line breaks included), DEL and C1: what text options refuse. */
// deno-lint-ignore no-control-regex
const C0_C1 = /[\u0000-\u001f\u007f-\u009f]/;

/**
 * Whether text has a control character (U+0000–U+001F, U+007F–U+009F): one
 * that could end a line of a file it is written to, or steer a terminal.
 *
 * @param text Any text.
 * @returns `true` when it has one.
 *
 * @example
 * ```ts
 * import { hasControl } from "./text.ts";
 * console.log(hasControl("/srv/my dir"), hasControl("/x\nExecStartPre=id")); // false true
 * ```
 */
export function hasControl(text: string): boolean {
  return C0_C1.test(text);
}

/** A character as a `\\uXXXX` escape. */
function escape(c: string): string {
  return `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`;
}

/**
 * Fold any text to one oneLine line: line breaks become ` / `, tabs a
 * space, ANSI escape sequences are removed, every other control character
 * is shown as a `\uXXXX` escape, and the result is cut to `max` characters
 * (ending in `…`).
 *
 * @param text The text, e.g. an error message written by the payload.
 * @param max The longest result, in UTF-16 code units.
 * @returns One line without control characters.
 *
 * @example Folding a payload's error for the terminal
 * ```ts
 * import { oneLine } from "./text.ts";
 * console.log(oneLine("bad\n\u001b[31mthing\u001b[0m\tto say\n"));
 * // bad / thing to say
 * console.log(oneLine("x".repeat(20), 8)); // xxxxxxx…
 * ```
 */
export function oneLine(text: string, max = 1000): string {
  const folded = text
    .replace(ANSI, "")
    .trim()
    .replace(BREAKS, " / ")
    .replaceAll("\t", " ")
    .replace(CONTROL, escape);
  if (folded.length <= max) return folded;
  let cut = folded.slice(0, Math.max(0, max - 1));
  // Never leave half of a surrogate pair.
  if (/[\ud800-\udbff]$/.test(cut)) cut = cut.slice(0, -1);
  return `${cut}…`;
}

/**
 * `JSON.stringify(text)`, with the characters JSON leaves as they are but a
 * terminal acts on (DEL, C1 controls, bidi overrides) escaped too: for
 * quoting a value in a message.
 *
 * @param text Any text, e.g. a refused option value.
 * @returns The text in double quotes, every control character escaped.
 *
 * @example
 * ```ts
 * import { quote } from "./text.ts";
 * console.log(quote("a\nb\u009bc")); // "a\nb\u009bc"
 * ```
 */
export function quote(text: string): string {
  return JSON.stringify(text).replace(CONTROL, escape);
}

/**
 * Text as a terminal should show it rather than act on it: every control
 * character but newline and tab (and the bidi overrides) as a `\uXXXX`
 * escape, lines kept as they are.
 *
 * @param text Any text, e.g. a log line written by the payload.
 * @returns The text, safe to write to a terminal.
 *
 * @example
 * ```ts
 * import { visible } from "./text.ts";
 * console.log(visible("a\tb\u001b[2Jc\r\n")); // a	b\u001b[2Jc\u000d + newline
 * ```
 */
export function visible(text: string): string {
  return text.replace(
    CONTROL,
    (c) => c === "\n" || c === "\t" ? c : escape(c),
  );
}
