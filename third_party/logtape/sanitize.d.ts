//#region src/sanitize.d.ts
/**
 * Options for neutralizing control characters and ANSI escape sequences in
 * formatted log output.
 *
 * Log messages and categories can carry attacker-influenced text.  When such
 * text reaches a terminal or a line-oriented log collector verbatim, it can
 * reposition the cursor, clear the screen, or start what looks like a separate
 * log record.  The built-in formatters therefore escape the dangerous
 * characters before emitting them.
 *
 * @since 2.0.23
 */
interface SanitizationOptions {
  /**
   * Whether to escape SGR (Select Graphic Rendition) sequences, i.e. the
   * `` `\x1b[…m` `` sequences that set colors and text styles.
   *
   * These are purely presentational and cannot move the cursor or clear the
   * screen, so they are preserved by default; applications that log
   * pre-colored strings or captured subprocess output keep working.  Set this
   * to `"escape"` to neutralize them as well.
   *
   * A preserved sequence that the text left open is closed with a reset at the
   * end of the text.  A formatter sanitizes each literal message part on its
   * own, so styling opened in one part does not carry across an interpolated
   * value into the next; color the value itself, or the whole string, instead.
   *
   * @default `"preserve"`
   */
  readonly sgr?: "escape" | "preserve";
  /**
   * Whether to escape carriage returns (`` `\r` ``) and line feeds
   * (`` `\n` ``).
   *
   * Preserving them keeps multi-line messages such as stack traces readable,
   * which is why that is the default.  The trade-off is that an
   * attacker-controlled newline can emit a line that looks like a genuine log
   * record to tools that split on newlines.  Set this to `"escape"` when the
   * output is consumed by such a tool.
   *
   * @default `"preserve"`
   */
  readonly newlines?: "escape" | "preserve";
}
/**
 * Escapes control characters and ANSI escape sequences that would otherwise be
 * interpreted by a terminal or by a line-oriented log reader.
 *
 * A preserved SGR sequence that is left open is closed with `` `\x1b[0m` `` at
 * the end of the text, so that styling an attacker sets cannot carry over into
 * whatever is printed next.
 *
 * ESC itself is escaped rather than the whole sequence it introduces: once the
 * introducer is gone, the remaining bytes (`` `[2J` ``, for instance) render as
 * ordinary text, so no sequence needs to be parsed to its end.  The 8-bit C1
 * introducers (U+0080–U+009F) are escaped unconditionally, since none of them
 * is printable and each is a single code point with no sequence to inspect.
 *
 * @param text The text to neutralize.
 * @param options Which classes of characters to preserve.
 * @returns The neutralized text.
 * @since 2.0.23
 */
declare function sanitizeControlSequences(text: string, options?: SanitizationOptions): string;
//#endregion
export { SanitizationOptions, sanitizeControlSequences };
