/**
 * Turning raw option values into resolved settings: defaults that depend on
 * who runs the command, relative paths made absolute against the caller's
 * directory.
 *
 * @module
 */
import type { LogLevel } from "@logtape/logtape";
import { UsageError } from "./errors.ts";
import {
  CORE_OPTIONS,
  type CoreOptions,
  type OptionSpecs,
  parseSeconds,
  parseUmask,
  type RestartPolicy,
  validateOption,
} from "./options.ts";

/** Who runs the command and where, as the defaults depend on it. */
export interface Caller {
  /** Effective uid. */
  euid: number;
  /** Current directory. */
  cwd: string;
  /** Environment lookup. */
  env: (name: string) => string | undefined;
  /** Whether a syslog daemon listens at `path` (a socket is there). */
  syslogAt?: (path: string) => boolean;
}

/** Where a daemon keeps its files when none are given. */
export interface DefaultPaths {
  /** Pidfile path. */
  pidfile: string;
  /** Log file path. */
  logFile: string;
  /** A private directory to create (mode 0700) before using the defaults, if any. */
  privateDir: string | undefined;
}

/**
 * Default paths: `/run` and `/var/log` for root; for anyone else a private
 * per-user directory, never a shared world-writable one.
 *
 * @example
 * ```ts
 * import { defaultPaths } from "./resolve.ts";
 * const env = (n: string) => ({ HOME: "/home/ann" } as Record<string, string>)[n];
 * console.log(defaultPaths("myd", { euid: 1000, cwd: "/", env }).pidfile);
 * // /home/ann/.local/state/myd/myd.pid
 * ```
 */
export function defaultPaths(
  name: string,
  caller: Caller,
  instance?: string,
): DefaultPaths {
  const file = instanceName(name, instance);
  if (caller.euid === 0) {
    return {
      pidfile: `/run/${file}.pid`,
      logFile: `/var/log/${file}.log`,
      privateDir: undefined,
    };
  }
  const absolute = (v: string | undefined) =>
    v !== undefined && v.startsWith("/") ? v : undefined;
  const home = absolute(caller.env("HOME"));
  const state = absolute(caller.env("XDG_STATE_HOME")) ??
    (home === undefined ? undefined : `${home}/.local/state`);
  if (state === undefined) {
    return {
      pidfile: `/run/user/${caller.euid}/${file}.pid`,
      logFile: `/run/user/${caller.euid}/${file}.log`,
      privateDir: undefined,
    };
  }
  const dir = `${state}/${name}`;
  return {
    pidfile: `${dir}/${file}.pid`,
    logFile: `${dir}/${file}.log`,
    privateDir: dir,
  };
}

/** What an instance name may be: it becomes part of file names and units. */
export const INSTANCE_NAME = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}$/;

/** `NAME`, or `NAME@INSTANCE` (systemd's template naming). */
export function instanceName(
  name: string,
  instance?: string | null,
): string {
  return instance === undefined || instance === null
    ? name
    : `${name}@${instance}`;
}

/**
 * Validate every option and apply defaults.
 *
 * @param name The daemon name.
 * @param specs The daemon's own option specs.
 * @param raw Raw values from the command line.
 * @param caller Who runs it and where.
 * @param foreground `true` for `run`, which uses a pidfile only when asked.
 * @returns The core settings and the daemon's own values.
 * @throws {UsageError} For any bad value.
 */
export function resolveOptions(
  name: string,
  specs: OptionSpecs,
  raw: Record<string, string | boolean | undefined>,
  caller: Caller,
  foreground: boolean,
): {
  core: CoreOptions;
  payload: Record<string, unknown>;
  defaults: DefaultPaths;
} {
  const get = (key: keyof typeof CORE_OPTIONS) =>
    validateOption(key, CORE_OPTIONS[key], raw[key], caller.cwd);
  const instance = get("instance") as string | undefined;
  if (instance !== undefined && !INSTANCE_NAME.test(instance)) {
    throw new UsageError(
      `Invalid value for --instance: ${
        JSON.stringify(instance)
      } (expected letters, digits, "_", "." and "-", at most 64, not starting with "." or "-")`,
    );
  }
  const defaults = defaultPaths(name, caller, instance);
  const pidfileGiven = raw.pidfile !== undefined;
  const core: CoreOptions = {
    instance,
    pidfile: pidfileGiven
      ? get("pidfile") as string
      : foreground
      ? undefined
      : defaults.pidfile,
    pidfileGiven,
    logFile: (get("log-file") as string | undefined) ?? defaults.logFile,
    logLevel: get("log-level") as LogLevel,
    logFormat: get("log-format") as "text" | "json",
    syslog: get("syslog") as string | undefined,
    syslogSocket: get("syslog-socket") as string,
    logTo: "stderr",
    chdir: get("chdir") as string,
    umask: parseUmask(get("umask") as string),
    readyTimeout: parseSeconds("ready-timeout", get("ready-timeout") as string),
    stopTimeout: parseSeconds("stop-timeout", get("stop-timeout") as string),
    restart: get("restart") as RestartPolicy,
    restartDelay: parseSeconds("restart-delay", get("restart-delay") as string),
    restartReset: parseSeconds("restart-reset", get("restart-reset") as string),
    maxRestarts: get("max-restarts") as number,
    user: get("user") as string | undefined,
    group: get("group") as string | undefined,
    clearEnv: get("clear-env") as boolean,
    noNewPrivs: !(get("allow-new-privs") as boolean),
    noCoreDumps: !(get("allow-core-dumps") as boolean),
    notifyFd: get("notify-fd") as number | undefined,
  };
  // Read by one command each, from the raw values, but checked with the rest.
  get("format");
  get("json");
  get("all");
  get("user-unit");
  get("lines");
  // Where records go: under `run`, stderr unless --syslog; detached, what
  // was asked for, else syslog when its socket exists, else the log file.
  if (core.syslog !== undefined) core.logTo = "syslog";
  else if (foreground) core.logTo = "stderr";
  else if (raw["log-file"] !== undefined) core.logTo = "file";
  else if (caller.syslogAt?.(core.syslogSocket)) {
    core.logTo = "syslog";
    core.syslog = "daemon";
  } else core.logTo = "file";
  const payload: Record<string, unknown> = {};
  for (const [key, spec] of Object.entries(specs)) {
    payload[key] = validateOption(key, spec, raw[key], caller.cwd);
  }
  return { core, payload, defaults };
}

/** Where a daemon with these options logs, in words (for its records and `status`). */
export function describeLogTo(core: CoreOptions): string {
  return core.logTo === "syslog"
    ? `syslog (${core.syslog} at ${core.syslogSocket})`
    : core.logTo === "file"
    ? core.logFile
    : "stderr";
}

/** Refuse a `--chdir` that is not an existing directory, before detaching. */
export function checkChdir(dir: string): void {
  let isDir = false;
  try {
    isDir = Deno.statSync(dir).isDirectory;
  } catch {
    // reported below
  }
  if (!isDir) {
    throw new UsageError(
      `Cannot use --chdir ${
        JSON.stringify(dir)
      }: it is not an existing directory`,
    );
  }
}
