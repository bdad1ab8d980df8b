/**
 * The commands every daemon gets, as a table: what each is for, what it
 * needs, and which options it takes. One check turns an option a command
 * does not take into a usage error naming both.
 *
 * @module
 */
import { UsageError } from "./errors.ts";
import { CORE_OPTIONS } from "./options.ts";

/** The name of one of the library's own options. */
export type CoreOptionName = keyof typeof CORE_OPTIONS;

/** What a command is and needs. */
export interface CommandSpec {
  /** One line for `help`. */
  readonly description: string;
  /** Whether it needs libc through FFI (processes, pidfiles, identities). */
  readonly libc: boolean;
  /** Whether it works on the pidfile (its default path is resolved). */
  readonly pidfile: boolean;
  /** The library's options it takes. */
  readonly options: readonly CoreOptionName[];
  /** Whether it takes the daemon's own options. */
  readonly payload: boolean;
}

/** How `start --restart` supervises. */
const SUPERVISION = [
  "restart",
  "restart-delay",
  "restart-reset",
  "max-restarts",
] as const satisfies CoreOptionName[];
/** Options that belong to one command each (see {@linkcode BELONGS}). */
export const ONE_COMMAND = [
  "format",
  "user-unit",
  "notify-fd",
  "json",
  "all",
  "lines",
  "follow",
] as const satisfies CoreOptionName[];
/**
 * Everything that describes how the daemon runs. The commands that control
 * a daemon take it too, so that an init script can pass one list to each.
 */
const DAEMON = (Object.keys(CORE_OPTIONS) as CoreOptionName[]).filter((o) =>
  !(ONE_COMMAND as readonly string[]).includes(o)
);

/** The commands, in the order `help` lists them. */
export const COMMANDS = {
  start: {
    description: "Start the daemon in the background; return once it is ready",
    libc: true,
    pidfile: true,
    options: DAEMON,
    payload: true,
  },
  stop: {
    description: "Stop the daemon (SIGTERM, then SIGKILL after --stop-timeout)",
    libc: true,
    pidfile: true,
    options: DAEMON,
    payload: true,
  },
  restart: {
    description: "Stop the daemon if it runs, then start it",
    libc: true,
    pidfile: true,
    options: DAEMON,
    payload: true,
  },
  upgrade: {
    description:
      "Start a new generation from the program on disk; stop the old once it is ready",
    libc: true,
    pidfile: true,
    options: DAEMON,
    payload: true,
  },
  status: {
    description:
      "Say whether the daemon runs (exit 0 running, 1 dead, 3 stopped)",
    libc: true,
    pidfile: true,
    options: [...DAEMON, "json", "all"],
    payload: true,
  },
  reload: {
    description:
      "Reopen the log file and run the reload hook; report its outcome",
    libc: true,
    pidfile: true,
    options: DAEMON,
    payload: true,
  },
  run: {
    description:
      "Run in the foreground, logging to stderr (systemd, containers)",
    // Without libc it runs what needs none, and refuses the rest in one
    // line (see without_libc.ts).
    libc: false,
    pidfile: false,
    options: [
      ...DAEMON.filter((o) => !(SUPERVISION as readonly string[]).includes(o)),
      "notify-fd",
    ],
    payload: true,
  },
  logs: {
    description:
      "Show the daemon's last log lines (-n N), and new ones (-f) across rotation",
    libc: true,
    // Its pidfile's launch record says where the daemon logs, and as whom.
    pidfile: true,
    options: [...DAEMON, "lines", "follow"],
    payload: true,
  },
  help: {
    description: "Show this help",
    libc: false,
    pidfile: false,
    options: [],
    payload: false,
  },
  version: {
    description: "Show the version",
    libc: false,
    pidfile: false,
    options: [],
    payload: false,
  },
  unit: {
    description:
      "Print a systemd unit (or launchd plist) that runs this daemon",
    // With libc it reads the kernel's argv and checks --user/--group.
    libc: false,
    pidfile: false,
    options: [...DAEMON, "format", "user-unit"],
    payload: true,
  },
} as const satisfies Record<string, CommandSpec>;

/** A command name. */
export type Command = keyof typeof COMMANDS;

/** Where an option belongs instead, for the message refusing it. */
const BELONGS: Partial<Record<CoreOptionName, string>> = {
  restart:
    "--restart works with start and restart; under run, the service manager restarts the daemon",
  "notify-fd": "--notify-fd works with run only",
  format: "--format works with unit only",
  json: "--json works with status only",
  all: "--all works with status only",
  "user-unit": "--user-unit works with unit only",
  lines: "--lines works with logs only",
  follow: "--follow works with logs only",
};

/**
 * Refuse any option given that `command` does not take.
 *
 * @param command The command.
 * @param given The long names of the options given.
 * @throws {UsageError} Naming the option and the command.
 *
 * @example
 * ```ts
 * import { checkOptions } from "./commands.ts";
 * try {
 *   checkOptions("status", ["pidfile", "user"]);
 * } catch (err) {
 *   console.log((err as Error).message); // Option "--user" does not apply to status
 * }
 * ```
 */
export function checkOptions(command: Command, given: readonly string[]): void {
  const spec: CommandSpec = COMMANDS[command];
  for (const name of given) {
    const core = Object.hasOwn(CORE_OPTIONS, name);
    const takes = core
      ? spec.options.includes(name as CoreOptionName)
      : spec.payload;
    if (takes) continue;
    const where = BELONGS[name as CoreOptionName];
    throw new UsageError(
      `Option ${JSON.stringify(`--${name}`)} does not apply to ${command}${
        where === undefined ? "" : `: ${where}`
      }`,
    );
  }
}
