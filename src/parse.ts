/**
 * Splitting a command line into its command and raw option values, with
 * `node:util` parseArgs. Loaded only by the stages that parse arguments.
 *
 * @module
 */
import { parseArgs } from "node:util";
import { UsageError } from "./errors.ts";
import {
  type Command,
  COMMANDS,
  CORE_OPTIONS,
  type OptionSpecs,
} from "./options.ts";

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
  let parsed;
  try {
    parsed = parseArgs({
      // `--syslog` alone means the daemon facility.
      args: args.map((a) => a === "--syslog" ? "--syslog=daemon" : a),
      options,
      strict: true,
      allowPositionals: true,
      tokens: true,
    });
  } catch (err) {
    throw new UsageError(parseArgsMessage(err));
  }
  const { values, positionals, tokens } = parsed;
  const owners: string[] = [];
  for (const t of tokens) {
    if (t.kind === "option") {
      owners[t.index] = t.name;
      if (t.value !== undefined && !t.inlineValue) owners[t.index + 1] = t.name;
    } else {
      owners[t.index] = t.kind === "positional" ? "<command>" : "--";
    }
  }
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
  if (values.help) command = "help";
  else if (values.version) command = "version";
  return {
    command,
    owners,
    raw: values as Record<string, string | boolean | undefined>,
  };
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
