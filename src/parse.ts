/**
 * Splitting a command line into its command and raw option values, with
 * `node:util` parseArgs. Loaded only by the stages that parse arguments.
 *
 * @module
 */
import { parseArgs } from "node:util";
import { UsageError } from "./errors.ts";
import { type Command, COMMANDS } from "./commands.ts";
import { CORE_OPTIONS, type OptionSpecs } from "./options.ts";
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
  /** Raw values by long option name, before validation. */
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
  const { values, positionals, tokens } = splitArgs(args, all);
  return {
    command: commandOf(positionals, values),
    owners: ownersOf(tokens),
    raw: values as Record<string, string | boolean | undefined>,
  };
}

/** What `parseArgs` is told of each option: `--help`, `--version`, then ours. */
function parseArgsOptions(
  all: OptionSpecs,
): Record<string, { type: "string" | "boolean"; short?: string }> {
  const options: Record<
    string,
    { type: "string" | "boolean"; short?: string }
  > = {
    help: { type: "boolean", short: "h" },
    version: { type: "boolean", short: "V" },
  };
  for (const [name, spec] of Object.entries(all)) {
    options[name] = { type: spec.type === "boolean" ? "boolean" : "string" };
  }
  return options;
}

/** The spec of an option whose value is optional, for `--name` alone. */
function bareSpec(all: OptionSpecs, arg: string) {
  const name = arg.slice(2);
  const spec = arg.startsWith("--") && Object.hasOwn(all, name)
    ? all[name]
    : undefined;
  return spec?.type === "string" && spec.bare !== undefined ? spec : undefined;
}

/**
 * `parseArgs` over the arguments, a bare optional-value option given its
 * default value first; its errors worded as usage errors.
 */
function splitArgs(args: readonly string[], all: OptionSpecs) {
  args.forEach((arg, i) => {
    // `--syslog local0` would log to facility daemon and call local0 a command.
    if (bareSpec(all, arg)?.choices?.includes(args[i + 1])) {
      throw new UsageError(
        `Option ${
          JSON.stringify(arg)
        } takes its value after "=": write ${arg}=${args[i + 1]}`,
      );
    }
  });
  try {
    return parseArgs({
      args: args.map((a) => {
        const bare = bareSpec(all, a)?.bare;
        return bare === undefined ? a : `${a}=${bare}`;
      }),
      options: parseArgsOptions(all),
      strict: true,
      allowPositionals: true,
      tokens: true,
    });
  } catch (err) {
    throw new UsageError(parseArgsMessage(err));
  }
}

/** The `parseArgs` tokens that {@linkcode ownersOf} reads. */
type ArgToken =
  | {
    kind: "option";
    index: number;
    name: string;
    value?: string;
    inlineValue?: boolean;
  }
  | { kind: "positional" | "option-terminator"; index: number };

/** For each argument index, the option it belongs to, `"<command>"` or `"--"`. */
function ownersOf(tokens: readonly ArgToken[]): string[] {
  const owners: string[] = [];
  for (const t of tokens) {
    if (t.kind === "option") {
      owners[t.index] = t.name;
      if (t.value !== undefined && !t.inlineValue) owners[t.index + 1] = t.name;
    } else {
      owners[t.index] = t.kind === "positional" ? "<command>" : "--";
    }
  }
  return owners;
}

/** The command word, `help` without one; `--help` and `--version` win over it. */
function commandOf(
  positionals: readonly string[],
  values: { help?: unknown; version?: unknown },
): Command {
  if (positionals.length > 1) {
    throw new UsageError(
      `Unexpected argument ${JSON.stringify(positionals[1])}`,
    );
  }
  let command: Command = "help";
  if (positionals.length === 1) {
    const word = positionals[0];
    if (!Object.hasOwn(COMMANDS, word)) {
      throw new UsageError(`Unknown command ${JSON.stringify(word)}`);
    }
    command = word as Command;
  }
  if (values.help) return "help";
  if (values.version) return "version";
  return command;
}

/** One readable line from a `parseArgs` error, without its advice paragraph. */
function parseArgsMessage(err: unknown): string {
  const code = (err as { code?: string }).code;
  const text = err instanceof Error ? err.message : String(err);
  const quoted = text.match(/'([^']*)'/)?.[1];
  switch (code) {
    case "ERR_PARSE_ARGS_UNKNOWN_OPTION":
      return `Unknown option ${JSON.stringify(quoted ?? text)}`;
    case "ERR_PARSE_ARGS_INVALID_OPTION_VALUE": {
      const option = JSON.stringify((quoted ?? "").split(/[ ,]/)[0]);
      if (/argument missing/.test(text)) {
        return `Option ${option} needs a value`;
      }
      if (/ambiguous/.test(text)) {
        return `Option ${option} has a value starting with "-": write it as ${
          JSON.parse(option)
        }=VALUE`;
      }
      return text.split("\n")[0].replace(/\.$/, "");
    }
    default:
      return text.split("\n")[0].replace(/\.$/, "");
  }
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
