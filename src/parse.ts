/**
 * Splitting a command line into its command and raw option values, GNU
 * style (`--name=value`, `--name value`, `-hV`, `-n5`, `-fn 5`, `--`), by
 * the option specs.
 * Loaded only by the stages that parse arguments.
 *
 * Our own parser rather than `node:util` parseArgs: that one starts Deno's
 * Node compatibility layer (megabytes and milliseconds in every `start`,
 * `stop` and `status`), and its errors could be reworded only by matching
 * their text.
 *
 * @module
 */
import { UsageError } from "./errors.ts";
import { type Command, COMMANDS } from "./commands.ts";
import { CORE_OPTIONS, type OptionSpec, type OptionSpecs } from "./options.ts";
import { quote } from "./text.ts";

/** The result of {@linkcode parseCommandLine}. */
export interface ParsedCommandLine {
  /** The command, or `help` when none was given. */
  command: Command;
  /**
   * Which arguments carry what: for each argument index, the option name it
   * belongs to (flag or value), `"<command>"` for the command word, or
   * `"--"` for the terminator.
   */
  owners: string[];
  /**
   * Raw values by long option name, before validation. It has no prototype:
   * `raw.constructor` is nobody's value.
   */
  raw: Record<string, string | boolean | undefined>;
}

/**
 * Split a command line into its command and raw option values.
 *
 * @param args The arguments after the program (e.g. `Deno.args`).
 * @param specs The daemon's own options.
 * @returns The command and the raw values.
 * @throws {UsageError} For an unknown command or option, a missing value or a stray argument.
 *
 * @example
 * ```ts
 * import { parseCommandLine } from "./parse.ts";
 * const { command, raw } = parseCommandLine(["start", "--port", "8080"], {
 *   port: { type: "integer", description: "Port", default: 8000 },
 * });
 * console.log(command, raw.port); // start 8080
 * ```
 */
export function parseCommandLine(
  args: readonly string[],
  specs: OptionSpecs,
): ParsedCommandLine {
  const all: OptionSpecs = { ...CORE_OPTIONS, ...specs };
  const raw: ParsedCommandLine["raw"] = Object.create(null);
  const owners: string[] = [];
  const positionals: string[] = [];
  for (let i = 0; i < args.length;) {
    const arg = args[i];
    if (arg === "--") {
      owners.push("--", ...args.slice(i + 1).map(() => "<command>"));
      positionals.push(...args.slice(i + 1));
      break;
    }
    if (arg.startsWith("--")) {
      const { name, value, width } = longOption(args, i, all);
      raw[name] = value;
      owners.push(...Array(width).fill(name));
      i += width;
    } else if (arg.startsWith("-") && arg !== "-") {
      const { given, width } = shortGroup(args, i, all);
      for (const [name, value] of given) raw[name] = value;
      // One argument, one owner: the last option of a group (and its value's).
      owners.push(...Array(width).fill(given[given.length - 1][0]));
      i += width;
    } else {
      owners.push("<command>");
      positionals.push(arg);
      i++;
    }
  }
  return { command: commandOf(positionals, raw), owners, raw };
}

/** The flags every program has besides its options, by short name. */
const SHORT_FLAGS = [["h", "help"], ["V", "version"]] as const;
const FLAG: OptionSpec = { type: "boolean", description: "" };

/** The spec of `--name`, `--help` and `--version` included. */
function specOf(all: OptionSpecs, name: string): OptionSpec | undefined {
  if (name === "help" || name === "version") return FLAG;
  return Object.hasOwn(all, name) ? all[name] : undefined;
}

/** One long option at `args[i]`: its value, and how many arguments it took. */
function longOption(
  args: readonly string[],
  i: number,
  all: OptionSpecs,
): { name: string; value: string | true; width: 1 | 2 } {
  const arg = args[i];
  // From index 3: "--=1" names an option "=1", not "" with a value.
  const eq = arg.indexOf("=", 3);
  const name = eq === -1 ? arg.slice(2) : arg.slice(2, eq);
  const attached = eq === -1 ? undefined : arg.slice(eq + 1);
  const option = `--${name}`;
  const spec = specOf(all, name);
  if (spec === undefined) {
    throw new UsageError(`Unknown option ${quote(option)}`);
  }
  if (spec.type === "boolean") {
    if (attached !== undefined) {
      throw new UsageError(`Option ${quote(option)} takes no value`);
    }
    return { name, value: true, width: 1 };
  }
  if (attached !== undefined) return { name, value: attached, width: 1 };
  const next: string | undefined = args[i + 1];
  if (spec.type === "string" && spec.bare !== undefined) {
    // `--syslog local0` would log to facility daemon and call local0 a command.
    if (next !== undefined && spec.choices?.includes(next)) {
      throw new UsageError(
        `Option ${
          quote(option)
        } takes its value after "=": write ${option}=${next}`,
      );
    }
    return { name, value: spec.bare, width: 1 };
  }
  return {
    name,
    value: separateValue(option, next, `${option}=VALUE`),
    width: 2,
  };
}

/**
 * The value given as the next argument of `option`, or a usage error:
 * missing, or starting with "-" (`--pidfile --port 8000` is more likely a
 * forgotten value than a pidfile named "--port"; "-" alone is a value).
 *
 * @param attached How to write the value attached instead.
 */
function separateValue(
  option: string,
  next: string | undefined,
  attached: string,
): string {
  if (next === undefined) {
    throw new UsageError(`Option ${quote(option)} needs a value`);
  }
  if (next.length > 1 && next.startsWith("-")) {
    throw new UsageError(
      `Option ${
        quote(option)
      } has a value starting with "-": write it as ${attached}`,
    );
  }
  return next;
}

/**
 * A group of short options at `args[i]`, GNU style: flags (`-hV`), and at
 * most one option with a value, which takes the rest of the group (`-n5`,
 * `-fn5`) or else the next argument (`-fn 5`).
 */
function shortGroup(
  args: readonly string[],
  i: number,
  all: OptionSpecs,
): { given: [string, string | true][]; width: 1 | 2 } {
  const byLetter = new Map<string, string>(SHORT_FLAGS);
  for (const [name, spec] of Object.entries(all)) {
    if (spec.short !== undefined) byLetter.set(spec.short, name);
  }
  // By code point, so that an unknown `-é` or emoji is named whole.
  const letters = [...args[i].slice(1)];
  const given: [string, string | true][] = [];
  for (let k = 0; k < letters.length; k++) {
    const option = `-${letters[k]}`;
    const name = byLetter.get(letters[k]);
    if (name === undefined) {
      throw new UsageError(`Unknown option ${quote(option)}`);
    }
    const spec = specOf(all, name)!;
    if (spec.type === "boolean") {
      given.push([name, true]);
      continue;
    }
    const rest = letters.slice(k + 1).join("");
    if (rest !== "") {
      given.push([name, rest]);
      return { given, width: 1 };
    }
    if (spec.type === "string" && spec.bare !== undefined) {
      given.push([name, spec.bare]);
      return { given, width: 1 };
    }
    given.push([name, separateValue(option, args[i + 1], `${option}VALUE`)]);
    return { given, width: 2 };
  }
  return { given, width: 1 };
}

/** The command word, `help` without one; `--help` and `--version` win over it. */
function commandOf(
  positionals: readonly string[],
  raw: ParsedCommandLine["raw"],
): Command {
  if (positionals.length > 1) {
    throw new UsageError(`Unexpected argument ${quote(positionals[1])}`);
  }
  let command: Command = "help";
  if (positionals.length === 1) {
    const word = positionals[0];
    if (!Object.hasOwn(COMMANDS, word)) {
      throw new UsageError(`Unknown command ${quote(word)}`);
    }
    command = word as Command;
  }
  if (raw.help) return "help";
  if (raw.version) return "version";
  return command;
}

/**
 * Refuse a command line that is not UTF-8. `Deno.args` (and a re-executed
 * stage's argv) decode each bad byte to U+FFFD, so a path given with one
 * would silently become another path.
 *
 * @param argv This program's argv as the kernel holds it.
 * @throws {UsageError} Naming the first argument that is not UTF-8.
 *
 * @example
 * ```ts
 * import { requireUtf8 } from "./parse.ts";
 * const bytes = (s: string) => new TextEncoder().encode(s);
 * requireUtf8([bytes("start"), bytes("/srv/ünï\ufffd")]);
 * try {
 *   requireUtf8([bytes("start"), new Uint8Array([0x61, 0xff])]);
 * } catch (err) {
 *   console.log((err as Error).message); // Argument "a\xff" is not valid UTF-8
 * }
 * ```
 */
export function requireUtf8(argv: readonly Uint8Array[]): void {
  const strict = new TextDecoder("utf-8", { fatal: true });
  for (const arg of argv) {
    try {
      strict.decode(arg);
    } catch {
      throw new UsageError(`Argument ${showBytes(arg)} is not valid UTF-8`);
    }
  }
}

/** Bytes quoted as text, each byte that is not part of a UTF-8 character as `\xNN`. */
function showBytes(bytes: Uint8Array): string {
  const strict = new TextDecoder("utf-8", { fatal: true });
  let out = "";
  for (let i = 0; i < bytes.length;) {
    // The shortest run from here that decodes is one whole character.
    let char: string | undefined;
    let n = 1;
    for (; n <= 4 && i + n <= bytes.length && char === undefined; n++) {
      try {
        char = strict.decode(bytes.subarray(i, i + n));
      } catch {
        // not a whole character yet
      }
    }
    if (char === undefined) {
      out += `\\x${bytes[i].toString(16).padStart(2, "0")}`;
      i++;
    } else {
      out += quote(char).slice(1, -1);
      i += n - 1;
    }
  }
  return `"${out}"`;
}
