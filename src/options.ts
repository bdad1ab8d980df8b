/**
 * Option definitions shared by the CLI parser, validation and `help`, so the
 * three cannot drift apart.
 *
 * @module
 */
import { UsageError } from "./errors.ts";
import { hasControl, quote } from "./text.ts";

/**
 * A log level: LogTape's, named here so that the published types do not
 * reach into LogTape's (a type test pins it to LogTape's own).
 */
export type LogLevel =
  | "trace"
  | "debug"
  | "info"
  | "warning"
  | "error"
  | "fatal";

/** LogTape's levels, lowest first (a test checks them against LogTape's own list). */
export const LOG_LEVELS: readonly LogLevel[] = [
  "trace",
  "debug",
  "info",
  "warning",
  "error",
  "fatal",
];

/** One option a daemon accepts, declared once. */
export type OptionSpec =
  | {
    type: "string";
    description: string;
    /** A one-letter short name: `-x` (GNU style: `-xVALUE`, `-x VALUE`, grouped as `-yx VALUE`). */
    short?: string;
    /** Placeholder for the value in `help`, e.g. `HOST`. */
    valueName?: string;
    default?: string;
    /** Allowed values, when only some are. */
    choices?: readonly string[];
    /**
     * What `--name` alone means. A value must then be attached with `=`
     * (`--name=VALUE`), and help shows `--name[=VALUE]`.
     */
    bare?: string;
  }
  | {
    type: "path";
    description: string;
    short?: string;
    valueName?: string;
    default?: string;
  }
  | {
    type: "integer";
    description: string;
    short?: string;
    valueName?: string;
    default?: number;
    min?: number;
    max?: number;
  }
  | { type: "boolean"; description: string; short?: string };

/** A daemon's own options, by long name (without the leading dashes). */
export type OptionSpecs = Record<string, OptionSpec>;

/**
 * The parsed value type of one option: a `string` option with `choices` is
 * their union, and an option without a default may be `undefined`.
 */
export type OptionValue<S extends OptionSpec> = S extends { type: "boolean" }
  ? boolean
  : S extends { type: "integer"; default: number } ? number
  : S extends { type: "integer" } ? number | undefined
  : S extends { type: "string"; choices: readonly (infer C extends string)[] }
    ? S extends { default: string } ? C : C | undefined
  : S extends { default: string } ? string
  : string | undefined;

/** Parsed values of a set of options, read-only: they describe how the daemon was started. */
export type OptionValues<S extends OptionSpecs> = {
  readonly [K in keyof S]: OptionValue<S[K]>;
};

/** The options the library itself understands. */
export interface CoreOptions {
  /** `--instance`: which of several instances this is (`NAME@INSTANCE`). */
  instance: string | undefined;
  /** Absolute pidfile path; `undefined` under `run` when none was asked for. */
  pidfile: string | undefined;
  /** Whether `--pidfile` was given. */
  pidfileGiven: boolean;
  /** Absolute log file path used when detached. */
  logFile: string;
  /** Lowest level written to the log. */
  logLevel: LogLevel;
  /** `text` lines, or one JSON object per line. */
  logFormat: "text" | "json";
  /** Log to syslog with this facility, instead of the file or stderr. */
  syslog: string | undefined;
  /** The syslog daemon's socket. */
  syslogSocket: string;
  /** Where records go: decided from the options, the mode and whether syslog listens. */
  logTo: "file" | "syslog" | "stderr";
  /** Absolute directory the daemon changes to. */
  chdir: string;
  /** The file-mode creation mask. */
  umask: number;
  /** Seconds `start` waits for readiness. */
  readyTimeout: number;
  /** Seconds the daemon has to stop before SIGKILL. */
  stopTimeout: number;
  /** With `start`: supervise the daemon and restart it when it exits (`no`: a single process). */
  restart: RestartPolicy;
  /** Seconds before the first restart; grows ×1.5 per restart in a row. */
  restartDelay: number;
  /** Seconds of uptime after which restarts in a row count from zero again. */
  restartReset: number;
  /** Restarts in a row before the supervisor gives up. */
  maxRestarts: number;
  /** `--user`, as given: resolved by `privileges.ts`. */
  user: string | undefined;
  /** `--group`, as given. */
  group: string | undefined;
  /** Keep only allow-listed environment variables. */
  clearEnv: boolean;
  /** Set `PR_SET_NO_NEW_PRIVS` (default on). */
  noNewPrivs: boolean;
  /** Set `RLIMIT_CORE` to 0 (default on). */
  noCoreDumps: boolean;
  /** Under `run`: write a newline to this descriptor when ready (s6). */
  notifyFd: number | undefined;
}

/** When a supervisor restarts the daemon. */
export type RestartPolicy = "no" | "on-failure" | "always";

/** Specs of the core options, for parsing and help. */
export const CORE_OPTIONS = {
  instance: {
    type: "string",
    valueName: "NAME",
    description:
      "One of several instances of this daemon: its own pidfile, log and records (NAME@INSTANCE)",
  },
  pidfile: {
    type: "path",
    valueName: "PATH",
    description: "Pidfile (default: /run/NAME.pid as root, else per-user)",
  },
  "log-file": {
    type: "path",
    valueName: "PATH",
    description:
      "Log file when detached (default: /var/log/NAME.log as root, else per-user)",
  },
  "log-level": {
    type: "string",
    valueName: "LEVEL",
    description: "Lowest level logged",
    default: "info",
    choices: LOG_LEVELS,
  },
  "log-format": {
    type: "string",
    valueName: "FORMAT",
    description: "Log lines as text or as one JSON object each",
    default: "text",
    choices: ["text", "json"],
  },
  syslog: {
    type: "string",
    valueName: "FACILITY",
    description: "Log to syslog (--syslog alone: facility daemon)",
    bare: "daemon",
    choices: [
      "daemon",
      "user",
      "local0",
      "local1",
      "local2",
      "local3",
      "local4",
      "local5",
      "local6",
      "local7",
      "auth",
      "authpriv",
      "cron",
      "ftp",
      "lpr",
      "mail",
      "news",
      "syslog",
      "uucp",
      "kern",
    ],
  },
  "syslog-socket": {
    type: "path",
    valueName: "PATH",
    description: "The syslog daemon's socket",
    default: "/dev/log",
  },
  chdir: {
    type: "path",
    valueName: "DIR",
    description: "Working directory of the daemon",
    default: "/",
  },
  umask: {
    type: "string",
    valueName: "OCTAL",
    description: "File-mode creation mask, octal",
    default: "027",
  },
  "ready-timeout": {
    type: "string",
    valueName: "SECONDS",
    description: "Seconds start waits for the daemon to be ready",
    default: "30",
  },
  "stop-timeout": {
    type: "string",
    valueName: "SECONDS",
    description: "Seconds the daemon has to stop before SIGKILL",
    default: "10",
  },
  restart: {
    type: "string",
    valueName: "POLICY",
    description: "With start: supervise; restart the daemon when it exits",
    default: "no",
    choices: ["no", "on-failure", "always"],
  },
  "restart-delay": {
    type: "string",
    valueName: "SECONDS",
    description: "Wait before the first restart; ×1.5 per restart, up to 15 s",
    default: "1",
  },
  "restart-reset": {
    type: "string",
    valueName: "SECONDS",
    description: "Uptime after which the restarts in a row count from 0",
    default: "60",
  },
  "max-restarts": {
    type: "integer",
    valueName: "N",
    description: "Restarts in a row before the supervisor gives up",
    default: 10,
    min: 0,
    max: 1000,
  },
  user: {
    type: "string",
    valueName: "USER",
    description: "Become this user (name or uid) after prepare; needs root",
  },
  group: {
    type: "string",
    valueName: "GROUP",
    description: "Become this group (name or gid); default: the user's",
  },
  "clear-env": {
    type: "boolean",
    description:
      "Pass on only PATH, LANG, LC_*, TZ and the daemon's own variables",
  },
  "allow-new-privs": {
    type: "boolean",
    description: "Do not set PR_SET_NO_NEW_PRIVS (setuid programs work again)",
  },
  "allow-core-dumps": {
    type: "boolean",
    description: "Do not set the core file size limit to 0",
  },
  format: {
    type: "string",
    valueName: "FORMAT",
    description: "With unit: the service manager's format",
    choices: ["systemd", "launchd"],
  },
  json: {
    type: "boolean",
    description: "With status: one JSON document (an array with --all)",
  },
  all: {
    type: "boolean",
    description: "With status: every instance found in the default locations",
  },
  "user-unit": {
    type: "boolean",
    description:
      "With unit: a systemd user unit (the default when not root and no --user)",
  },
  "notify-fd": {
    type: "integer",
    valueName: "FD",
    description: "With run: write a newline to this descriptor when ready (s6)",
    min: 3,
    max: 1048575,
  },
  lines: {
    type: "integer",
    short: "n",
    valueName: "N",
    description: "With logs: how many of the last lines to show",
    default: 10,
    min: 0,
    max: 1_000_000_000,
  },
  follow: {
    type: "boolean",
    short: "f",
    description: "With logs: keep showing new lines, across rotation",
  },
} as const satisfies OptionSpecs;

export const PAYLOAD_RESERVED = new Set([
  ...Object.keys(CORE_OPTIONS),
  "help",
  "version",
]);

/** Check that a daemon's own option names are usable; throws `TypeError` otherwise. */
export function checkSpecs(specs: OptionSpecs): void {
  for (const name of Object.keys(specs)) {
    if (!/^[a-z][a-z0-9-]*$/.test(name)) {
      throw new TypeError(
        `Option name ${
          JSON.stringify(name)
        } must be lower-case letters, digits and dashes`,
      );
    }
    if (PAYLOAD_RESERVED.has(name)) {
      throw new TypeError(
        `Option name ${JSON.stringify(name)} is reserved by denod`,
      );
    }
    const spec = specs[name];
    checkShort(name, spec, specs);
    // The option's type is the union of its choices: its default and bare
    // value must be among them, or every run would fail to validate.
    if (spec.type !== "string" || spec.choices === undefined) continue;
    for (
      const [what, value] of [["default", spec.default], ["bare", spec.bare]]
    ) {
      if (value !== undefined && !spec.choices.includes(value)) {
        throw new TypeError(
          `Option ${JSON.stringify(name)} has ${what} ${
            JSON.stringify(value)
          }, which is not one of its choices`,
        );
      }
    }
  }
}

/** The short letters of the library's own flags and options. */
const CORE_SHORT = new Set([
  "h",
  "V",
  ...Object.values(CORE_OPTIONS as OptionSpecs).flatMap((s) =>
    s.short === undefined ? [] : [s.short]
  ),
]);

/** A payload option's short name is one ASCII letter or digit, nobody else's. */
function checkShort(name: string, spec: OptionSpec, specs: OptionSpecs): void {
  if (spec.short === undefined) return;
  const q = JSON.stringify;
  if (!/^[A-Za-z0-9]$/.test(spec.short)) {
    throw new TypeError(
      `Option ${q(name)} has short name ${
        q(spec.short)
      }, which is not one letter or digit`,
    );
  }
  const other = Object.keys(specs).find((n) =>
    n !== name && specs[n].short === spec.short
  );
  if (CORE_SHORT.has(spec.short) || other !== undefined) {
    throw new TypeError(
      `Option ${q(name)} has short name ${q(spec.short)}, which ${
        other === undefined ? "denod" : `option ${q(other)}`
      } already uses`,
    );
  }
}

/**
 * Validate one option's raw value against its spec.
 *
 * @param name The long option name.
 * @param spec Its spec.
 * @param raw The raw value, or `undefined` when not given.
 * @param cwd The directory relative paths are resolved against.
 * @returns The typed value.
 * @throws {UsageError} When the value does not fit the spec.
 */
export function validateOption(
  name: string,
  spec: OptionSpec,
  raw: string | boolean | undefined,
  cwd: string,
): string | number | boolean | undefined {
  if (spec.type === "boolean") return raw === true;
  const value = raw === undefined ? spec.default : raw;
  if (value === undefined) return undefined;
  const text = String(value);
  const bad = (expected: string) =>
    new UsageError(
      `Invalid value for --${name}: ${quote(text)} (expected ${expected})`,
    );
  // A value may end up in a unit file, a log line or a terminal, where a
  // line break or an escape sequence would change what the text means.
  if (hasControl(text)) throw bad("no control characters");
  switch (spec.type) {
    case "string":
      if (spec.choices !== undefined && !spec.choices.includes(text)) {
        throw bad(`one of ${spec.choices.join(", ")}`);
      }
      return text;
    case "path": {
      if (text === "") throw bad("a path");
      const path = resolvePath(cwd, text);
      if (!fitsPathLimits(path)) {
        throw bad(
          `a path under ${PATH_MAX} bytes, each name at most ${NAME_MAX} bytes`,
        );
      }
      return path;
    }
    case "integer": {
      const min = spec.min ?? Number.MIN_SAFE_INTEGER;
      const max = spec.max ?? Number.MAX_SAFE_INTEGER;
      const range = `an integer from ${min} to ${max}`;
      if (typeof value === "number") return value;
      if (!/^-?[0-9]{1,16}$/.test(text)) throw bad(range);
      const n = Number(text);
      if (n < min || n > max) throw bad(range);
      return n;
    }
  }
}

/** Linux's PATH_MAX (the terminating NUL included) and NAME_MAX, in bytes. */
const PATH_MAX = 4096;
const NAME_MAX = 255;

/**
 * Whether the kernel can take `path` whole: a longer one fails only when
 * it is opened (ENAMETOOLONG), after a daemon may have detached.
 */
function fitsPathLimits(path: string): boolean {
  const encoder = new TextEncoder();
  return encoder.encode(path).length < PATH_MAX &&
    path.split("/").every((name) => encoder.encode(name).length <= NAME_MAX);
}

/** `path` made absolute against `cwd`, with `.` and `..` segments folded. */
export function resolvePath(cwd: string, path: string): string {
  const parts = (path.startsWith("/") ? path : `${cwd}/${path}`).split("/");
  const out: string[] = [];
  for (const part of parts) {
    if (part === "" || part === ".") continue;
    if (part === "..") out.pop();
    else out.push(part);
  }
  return "/" + out.join("/");
}

/** Seconds as a positive decimal up to a day; throws {@linkcode UsageError}. */
export function parseSeconds(name: string, text: string): number {
  const n = /^[0-9]{1,5}(\.[0-9]{1,3})?$/.test(text) ? Number(text) : NaN;
  if (!(n > 0 && n <= 86400)) {
    throw new UsageError(
      `Invalid value for --${name}: ${
        JSON.stringify(text)
      } (expected seconds, more than 0 and at most 86400)`,
    );
  }
  return n;
}

/** An octal umask from 0 to 0777; throws {@linkcode UsageError}. */
export function parseUmask(text: string): number {
  if (!/^0?[0-7]{1,3}$/.test(text)) {
    throw new UsageError(
      `Invalid value for --umask: ${
        JSON.stringify(text)
      } (expected an octal mask from 000 to 777)`,
    );
  }
  return parseInt(text, 8);
}
