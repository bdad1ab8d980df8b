/**
 * The command line every daemon gets: parse, dispatch, report with LSB exit
 * codes. A user mistake is one line on stderr, never a stack trace.
 *
 * @module
 */
import { type Libc, libc as loadLibc } from "../ffi/mod.ts";
import type { DaemonDefinition } from "./definition.ts";
import { DaemonError, Exit, StatusExit, UsageError } from "./errors.ts";
import {
  checkOptions,
  type Command,
  COMMANDS,
  ONE_COMMAND,
} from "./commands.ts";
import {
  CORE_OPTIONS,
  type CoreOptions,
  type OptionSpec,
  type OptionSpecs,
  resolvePath,
  validateOption,
} from "./options.ts";
import type { ParsedCommandLine } from "./parse.ts";
import {
  type Caller,
  checkChdir,
  type DefaultPaths,
  defaultPaths,
  describeLogTo,
  INSTANCE_NAME,
  instanceName,
  resolveOptions,
} from "./resolve.ts";
import type { StatusReport } from "./control.ts";
import { Pidfile } from "./pidfile.ts";
import { ago, formatDuration } from "./words.ts";
import { programCommand } from "./program.ts";
import { readLaunchRecord, type RecordedOptions } from "./state.ts";
import { PIDFILE_FD, type Stage, takeStage } from "./stage.ts";
import { type Identity, requireRoot, resolveIdentity } from "./privileges.ts";

/** One option's help line. */
function optionLine(name: string, spec: OptionSpec): string {
  const value = spec.type === "boolean"
    ? ""
    : ` ${
      spec.valueName ?? (spec.type === "integer"
        ? "N"
        : spec.type === "path"
        ? "PATH"
        : "VALUE")
    }`;
  const bare = spec.type === "string" && spec.bare !== undefined;
  const long = bare ? `--${name}[=${value.trim()}]` : `--${name}${value}`;
  const left = `  ${spec.short === undefined ? "" : `-${spec.short}, `}${long}`;
  let right = spec.description;
  if ("choices" in spec && spec.choices !== undefined) {
    right += ` (${spec.choices.join(", ")})`;
  }
  if ("default" in spec && spec.default !== undefined) {
    right += ` [default: ${spec.default}]`;
  }
  return `${left.padEnd(28)} ${right}`;
}

/**
 * The help text, generated from the same definitions the parser uses.
 *
 * @param def The daemon's definition.
 * @returns The text `help` prints: commands, options, exit codes.
 *
 * @example
 * ```ts
 * import { helpText } from "./cli.ts";
 * const text = helpText({ name: "myd", version: "1.0.0", main() {} });
 * console.log(text.includes("--pidfile PATH")); // true
 * ```
 */
export function helpText(def: DaemonDefinition): string {
  const lines = [
    `${def.name} ${def.version}${
      def.description ? ` — ${def.description}` : ""
    }`,
    "",
    `Usage: ${def.name} <command> [options]`,
    "",
    "Commands:",
    ...Object.entries(COMMANDS).map(([c, d]) =>
      `  ${c.padEnd(26)} ${d.description}`
    ),
    "",
    "Options:",
    ...Object.entries(CORE_OPTIONS as OptionSpecs).map(([n, s]) =>
      optionLine(n, s)
    ),
  ];
  const own = Object.entries(def.options ?? {});
  if (own.length > 0) {
    lines.push("", `Options of ${def.name}:`);
    lines.push(...own.map(([n, s]) => optionLine(n, s)));
  }
  lines.push(
    "",
    "Exit codes: 0 success, 1 failure, 2 invalid arguments, 4 insufficient privilege,",
    "7 not running (reload, upgrade); status: 0 running, 1 dead, 3 not running, 4 unknown.",
  );
  return lines.join("\n");
}

/**
 * The version line: the daemon's name and version, and the runtime's.
 *
 * @param def The daemon's definition.
 * @returns The line `version` prints.
 *
 * @example
 * ```ts
 * import { versionText } from "./cli.ts";
 * const text = versionText({ name: "myd", version: "1.0.0", main() {} });
 * console.log(text.startsWith("myd 1.0.0 (deno ")); // true
 * ```
 */
export function versionText(def: DaemonDefinition): string {
  const how = Deno.build.standalone ? "compiled" : "deno run";
  return `${def.name} ${def.version} (deno ${Deno.version.deno}, ${Deno.build.target}, ${how})`;
}

/**
 * Run one command line of a daemon and exit with its code.
 *
 * @param def The daemon.
 * @param args The arguments after the program.
 */
export async function runCli(
  def: DaemonDefinition,
  args: readonly string[],
): Promise<void> {
  try {
    // A daemon whose main returned runs on while its event loop has work;
    // the entry point's `await` must end then, or the loop never looks
    // empty (a pending top-level await hides it: measured on Deno 2.9).
    const runsOn = Promise.withResolvers<null>();
    const done = dispatch(def, args, () => runsOn.resolve(null));
    const code = await Promise.race([done, runsOn.promise]);
    if (code !== null) Deno.exit(code);
    done.then((code) => Deno.exit(code), (err) => exitWith(def, err));
    return;
  } catch (err) {
    exitWith(def, err);
  }
}

/** Report what a command threw and exit with its code. */
function exitWith(def: DaemonDefinition, err: unknown): never {
  const code = err instanceof UsageError || err instanceof DaemonError
    ? err.exitCode
    : Exit.FAILURE;
  const text = err instanceof UsageError || err instanceof DaemonError
    ? err.message
    : `Unexpected error: ${err instanceof Error ? err.stack : String(err)}`;
  console.error(`${def.name}: ${text}`);
  if (err instanceof UsageError) {
    console.error(`Usage: ${def.name} <command> [options]; try "help"`);
    // `npm start --port 8080` gives npm the option and us its value.
    const script = Deno.env.get("npm_lifecycle_event");
    const entry = Deno.mainModule.slice(Deno.mainModule.lastIndexOf("/") + 1);
    const ours = Deno.env.get("npm_lifecycle_script")?.includes(entry);
    if (ours && /^Unexpected argument/.test(err.message)) {
      console.error(
        `Under npm, options go after "--": npm run ${script} -- --option value`,
      );
    }
  }
  Deno.exit(code);
}

/** What a command's handler gets: the command line, resolved. */
interface Invocation {
  libc: Libc;
  def: DaemonDefinition;
  args: readonly string[];
  parsed: ParsedCommandLine;
  /** The options in force: those given, over those recorded at `start`. */
  options: ParsedCommandLine["raw"];
  core: CoreOptions;
  payload: Record<string, unknown>;
  defaults: DefaultPaths;
  identity: Identity | undefined;
  /** For `run`: main returned and the daemon runs on (see `runCli`). */
  runsOn: () => void;
}

/**
 * Each command's handler: it reports to the terminal and returns the exit
 * code (`help` and `version`, which need nothing, are answered first;
 * `unit`, which can do without libc, is {@linkcode unitCommand}).
 */
const HANDLERS: Record<
  Exclude<Command, "help" | "version" | "unit">,
  (run: Invocation) => Promise<number>
> = {
  run: async ({ libc, def, core, payload, identity, runsOn }) => {
    requireRoot(libc, identity);
    checkChdir(core.chdir);
    const { serve } = await import("./serve.ts");
    return await serve(libc, def, core, payload, {
      detached: false,
      identity,
      runsOn,
    });
  },
  start: (run) => startCommand(run, false),
  restart: (run) => startCommand(run, true),
  upgrade: (run) => upgradeCommand(run),
  stop: async ({ libc, def, core }) => {
    const { stop } = await import("./control.ts");
    const { withProgress } = await import("./progress.ts");
    const result = await withProgress(
      `Waiting for ${def.name} to stop`,
      stop(libc, core.pidfile!, core.stopTimeout, core.readyTimeout),
    );
    console.log(
      result.outcome === "not-running"
        ? `${label(def, core)} is not running${
          result.cleared !== null
            ? ` (cleared the record of its last run: ${result.cleared.how}${
              result.cleared.detail ? ` (${result.cleared.detail})` : ""
            } ${ago(result.cleared.at)})`
            : result.removedStale
            ? " (removed its stale pidfile)"
            : ""
        }`
        : `${label(def, core)} stopped (${
          result.supervised ? "supervisor pid" : "pid"
        } ${result.pid}${
          result.outcome === "killed" ? ", killed after --stop-timeout" : ""
        })`,
    );
    return Exit.OK;
  },
  status: async (run) => {
    if (run.options.all === true) return await statusOfAll(run);
    const { libc, def, core, options } = run;
    const { status } = await import("./control.ts");
    const result = await status(
      libc,
      label(def, core),
      core.pidfile!,
      { logsTo: describeLogTo(core), instance: core.instance ?? null },
    );
    console.log(
      options.json === true
        ? JSON.stringify(result.report, null, 2)
        : result.message,
    );
    return result.code;
  },
  logs: async ({ libc, def, core, parsed, identity }) => {
    const { logSource, showLogs } = await import("./logs.ts");
    const lines = validateOption(
      "lines",
      CORE_OPTIONS.lines,
      parsed.raw.lines,
      Deno.cwd(),
    ) as number;
    const uid = identity?.user?.uid;
    const follow = parsed.raw.follow === true;
    // Following ends quietly, exit 0, on SIGINT and SIGTERM alike, even in
    // a write to a reader that stopped reading. Without -f they act as on cat.
    const stop = new AbortController();
    const abort = () => stop.abort();
    const signals = follow ? (["SIGINT", "SIGTERM"] as const) : [];
    for (const s of signals) Deno.addSignalListener(s, abort);
    try {
      return await showLogs(libc, logSource(core, def.name), {
        lines,
        follow,
        owners: [0, libc.geteuid(), ...(uid === undefined ? [] : [uid])],
        note: (text) => console.error(`${def.name}: ${text}`),
        signal: stop.signal,
      });
    } finally {
      for (const s of signals) Deno.removeSignalListener(s, abort);
    }
  },
  reload: async ({ libc, def, core }) => {
    const { reload } = await import("./control.ts");
    const pid = await reload(libc, core.pidfile!, core.readyTimeout);
    console.log(`${label(def, core)} reloaded (pid ${pid})`);
    return Exit.OK;
  },
};

/**
 * Run the command line, or, in a process `start` spawned, its stage.
 *
 * @returns The exit code.
 */
async function dispatch(
  def: DaemonDefinition,
  args: readonly string[],
  runsOn: () => void,
): Promise<number> {
  const libc = loadLibcIfAllowed();
  // A process spawned by `start` learns its stage first, before anything
  // can leak the stage descriptor to the payload (it always has FFI).
  const stage = libc instanceof Error ? null : takeStage(libc);
  if (stage !== null) {
    return await runStage(libc as Libc, def, stage, runsOn);
  }
  const { parseCommandLine, requireUtf8 } = await import("./parse.ts");
  if (!(libc instanceof Error)) requireUtf8(libc.selfArgvBytes());
  const parsed = parseCommandLine(args, def.options ?? {});
  const { command, raw } = parsed;
  checkOptions(
    command,
    Object.keys(raw).filter((k) =>
      raw[k] !== undefined && k !== "help" && k !== "version"
    ),
  );
  // What needs no libc runs without it (`--deny-ffi`, an OS without a
  // driver); everything else says in one line what it needs.
  if (command === "help" || command === "version") {
    console.log(command === "help" ? helpText(def) : versionText(def));
    return Exit.OK;
  }
  const os = libc instanceof Error ? null : libc;
  if (libc instanceof Error && COMMANDS[command].libc) {
    throw libcMissing(command, libc);
  }
  const { options, core, payload, defaults } = inForce(def, os, raw, command);
  // Without libc (only `unit` gets here so), names stay unchecked: the
  // service manager resolves them.
  const identity = os === null
    ? undefined
    : resolveIdentity(os, core.user, core.group);
  const run = {
    def,
    args,
    parsed,
    options,
    core,
    payload,
    defaults,
    identity,
    runsOn,
  };
  if (command === "unit") return await unitCommand({ ...run, libc: os });
  // Every other command needs libc (the table), so `os` is there, but `run`.
  return await HANDLERS[command]({
    ...run,
    libc: os ?? await withoutLibc(core, libc as Error),
  });
}

/** `run`'s libc without FFI, or a one-line refusal of what needs it. */
async function withoutLibc(core: CoreOptions, why: Error): Promise<Libc> {
  const { runWithoutLibc } = await import("./without_libc.ts");
  return runWithoutLibc(core, (name) => Deno.env.get(name), why);
}

/**
 * The options in force for `command`: those given, and for a command on a
 * started daemon, under them, those it was started with (its launch record),
 * so that `restart` starts it as it was and `stop` waits its stop timeout.
 */
function inForce(
  def: DaemonDefinition,
  libc: Libc | null,
  raw: ParsedCommandLine["raw"],
  command: Command,
): ReturnType<typeof resolveOptions> & { options: ParsedCommandLine["raw"] } {
  const caller = callerOf(libc);
  // A unit describes a `run`: the same defaults apply.
  const foreground = command === "run" || command === "unit";
  const specs = def.options ?? {};
  const resolved = resolveOptions(def.name, specs, raw, caller, foreground);
  const record = libc !== null && COMMANDS[command].pidfile &&
      command !== "start"
    ? readLaunchRecord(libc, resolved.core.pidfile!)
    : null;
  if (record === null) return { ...resolved, options: raw };
  // Every option given counts, the command's own (`--json`) included.
  const options: ParsedCommandLine["raw"] = { ...record.options };
  for (const [name, value] of Object.entries(raw)) {
    if (value !== undefined) options[name] = value;
  }
  return {
    ...resolveOptions(def.name, specs, options, caller, foreground),
    options,
  };
}

/** What the messages call the daemon: `NAME`, or `NAME@INSTANCE`. */
function label(def: DaemonDefinition, core: CoreOptions): string {
  return instanceName(def.name, core.instance);
}

/** libc through FFI, or why it cannot be had (FFI denied, no driver for this OS). */
function loadLibcIfAllowed(): Libc | Error {
  try {
    return loadLibc();
  } catch (err) {
    return err as Error;
  }
}

/**
 * The one line a command that needs libc reports without it: FFI not
 * allowed (exit 4, like any missing permission), or no driver for this OS.
 */
function libcMissing(command: Command, why: Error): DaemonError {
  if (why instanceof Deno.errors.NotCapable) {
    return new DaemonError(
      `${command} needs FFI to call libc: run it with --allow-ffi (deno run -A, or a binary compiled with it)`,
      Exit.PRIVILEGE,
      { cause: why },
    );
  }
  return new DaemonError(
    `${command} needs libc, and ${why.message} yet (Linux on x86_64 and aarch64 is)`,
    Exit.FAILURE,
    { cause: why },
  );
}

/** Who runs the command and where, for the defaults. */
function callerOf(libc: Libc | null): Caller {
  return {
    euid: libc?.geteuid() ?? uidWithoutLibc(),
    cwd: Deno.cwd(),
    env: (n: string) => Deno.env.get(n),
    syslogAt: (path: string) => {
      try {
        return libc !== null && libc.stat(path).type === "socket";
      } catch {
        return false;
      }
    },
  };
}

/** The caller's uid as Deno tells it, when libc cannot (0 if not even that). */
function uidWithoutLibc(): number {
  try {
    return Deno.uid() ?? 0;
  } catch {
    return 0;
  }
}

/**
 * A process `start` spawned: the session leader needs nothing more (it
 * loads no parser and no logger), nor does the supervisor, which takes its
 * settings from the stage; the daemon runs with what `start` resolved.
 */
async function runStage(
  libc: Libc,
  def: DaemonDefinition,
  stage: Stage,
  runsOn: () => void,
): Promise<number> {
  if (stage.stage === "leader") {
    const { runLeader } = await import("./leader.ts");
    return runLeader(libc, stage);
  }
  if (stage.stage === "supervisor") {
    const { runSupervisor } = await import("./supervise.ts");
    return await runSupervisor(libc, stage);
  }
  const { serve } = await import("./serve.ts");
  const { core, options, identity } = stage.daemon;
  const how = {
    identity: identity ?? undefined,
    denoDir: stage.denoDir ?? undefined,
    upgrade: stage.upgrade ?? undefined,
    runsOn,
  };
  return await serve(
    libc,
    def,
    core,
    options,
    stage.supervisor === null
      ? {
        ...how,
        detached: true,
        pidfile: Pidfile.adopt(libc, stage.pidfile, PIDFILE_FD),
      }
      : {
        ...how,
        detached: true,
        supervisor: { pid: stage.supervisor, pidfile: stage.pidfile },
      },
  );
}

/** `start`, and `restart` (which checks the new start, then stops the old). */
async function startCommand(
  { libc, def, args, options, core, payload, defaults, identity }: Invocation,
  restart: boolean,
): Promise<number> {
  requireRoot(libc, identity);
  const { checkStart, start } = await import("./start.ts");
  const { withProgress } = await import("./progress.ts");
  const located = { ...core, pidfile: core.pidfile! };
  const usesDefaultDir = !core.pidfileGiven ||
    options["log-file"] === undefined;
  const startOptions = {
    name: def.name,
    options: payload,
    privateDir: usesDefaultDir ? defaults.privateDir : undefined,
    declaredEnv: def.env,
    identity,
    program: programCommand(
      libc.selfCommand().argv,
      args,
      Deno.cwd(),
    ),
    given: given(options, def.options ?? {}),
  };
  if (restart) {
    // Whatever would make the new daemon fail to start is found before the
    // running one is stopped.
    checkStart(libc, located, startOptions);
    const { stop } = await import("./control.ts");
    const stopped = await withProgress(
      `Waiting for ${def.name} to stop`,
      stop(libc, located.pidfile, core.stopTimeout, core.readyTimeout),
    );
    if (stopped.outcome !== "not-running") {
      console.log(
        `${label(def, core)} stopped (${
          stopped.supervised ? "supervisor pid" : "pid"
        } ${stopped.pid})`,
      );
    }
  }
  const result = await withProgress(
    `Waiting for ${def.name} to be ready`,
    start(libc, located, startOptions),
  );
  const supervised = result.supervisor === undefined
    ? ""
    : `, supervised by pid ${result.supervisor}`;
  console.log(
    result.outcome === "started"
      ? `${label(def, core)} started (pid ${result.pid}${supervised})`
      : `${
        label(def, core)
      } is already running (pid ${result.pid}${supervised})`,
  );
  return Exit.OK;
}

/** `upgrade`: a new generation from the program on disk, then the old one stops. */
async function upgradeCommand(
  { libc, def, options, core, payload, identity }: Invocation,
): Promise<number> {
  requireRoot(libc, identity);
  const { upgrade } = await import("./upgrade.ts");
  const record = readLaunchRecord(libc, core.pidfile!);
  const result = await upgrade(libc, { ...core, pidfile: core.pidfile! }, {
    name: def.name,
    options: payload,
    declaredEnv: def.env,
    identity,
    // The program as started, so that a binary replaced at that path is
    // the one that runs; without a record, the one running this command.
    program: record?.program ??
      programCommand(libc.selfCommand().argv, Deno.args, Deno.cwd()),
    given: given(options, def.options ?? {}),
  });
  const supervised = result.supervisor === undefined
    ? ""
    : `, supervised by pid ${result.supervisor}`;
  console.log(
    `${def.name} upgraded (pid ${result.pid}, generation ${result.generation}, replacing pid ${result.previous}${supervised})`,
  );
  return Exit.OK;
}

/**
 * This program's command line when the kernel's cannot be read: the
 * executable, `run -A` and the entry module under `deno run`, then `args`.
 * (Deno flags beyond `-A` are not known here.)
 */
function argvWithoutLibc(args: readonly string[]): string[] {
  const program = Deno.build.standalone
    ? [Deno.execPath()]
    : [Deno.execPath(), "run", "-A", new URL(Deno.mainModule).pathname];
  return [...program, ...args];
}

/** `unit`: a service definition that runs this program with `run`. */
async function unitCommand(
  { libc, def, args, parsed, core, identity }:
    & Omit<Invocation, "libc">
    & { libc: Libc | null },
): Promise<number> {
  const { serviceCommand, systemdUnit, launchdPlist, hiddenByPrivateTmp } =
    await import("./unit.ts");
  const specs: OptionSpecs = { ...CORE_OPTIONS, ...def.options };
  const { raw, owners } = parsed;
  const input = {
    name: def.name,
    description: def.description ?? def.name,
    command: serviceCommand(
      libc?.selfCommand().argv ?? argvWithoutLibc(args),
      args,
      owners,
      Deno.cwd(),
      (name) => specs[name]?.type === "path",
    ),
    core,
    user: identity?.user?.name || core.user,
    group: core.group,
    restart: raw.restart === undefined ? undefined : core.restart,
  };
  const format = raw.format ??
    (Deno.build.os === "darwin" ? "launchd" : "systemd");
  if (format === "launchd") {
    if (raw["user-unit"] !== undefined) {
      throw new UsageError(
        "--user-unit makes a systemd unit, not a launchd one",
      );
    }
    await writeUnit(launchdPlist(input));
    return Exit.OK;
  }
  // A non-root caller cannot install a system unit without sudo, and one
  // without --user would run the daemon as root: a user unit is meant.
  const userUnit = raw["user-unit"] === true ||
    ((libc?.geteuid() ?? uidWithoutLibc()) !== 0 && input.user === undefined &&
      input.group === undefined);
  const text = systemdUnit({ ...input, userUnit });
  // Notes go to stderr: `unit > file` keeps the unit alone.
  if (userUnit && raw["user-unit"] === undefined) {
    console.error(
      `${def.name}: a user unit, as you are not root: save it as ~/.config/systemd/user/${def.name}.service (for a system unit: --user USER, or run unit as root)`,
    );
  }
  const hidden = userUnit ? [] : hiddenByPrivateTmp(input.command);
  if (hidden.length > 0) {
    console.error(
      `${def.name}: warning: the unit has PrivateTmp=yes, which hides /tmp from the service, and its command names ${
        hidden.map((w) => JSON.stringify(w)).join(", ")
      }: install the program (and its files) outside /tmp and /var/tmp`,
    );
  }
  await writeUnit(text);
  return Exit.OK;
}

/**
 * The options given on a command line, to record or to apply over recorded
 * ones: those that describe the daemon (not `--json`, `--format`, …),
 * paths made absolute against the caller's directory.
 */
function given(
  raw: ParsedCommandLine["raw"],
  own: OptionSpecs,
): RecordedOptions {
  const specs: OptionSpecs = { ...CORE_OPTIONS, ...own };
  const out: RecordedOptions = Object.create(null);
  for (const [name, value] of Object.entries(raw)) {
    if (value === undefined || value === false || !Object.hasOwn(specs, name)) {
      continue;
    }
    if ((ONE_COMMAND as readonly string[]).includes(name)) continue;
    out[name] = specs[name].type === "path" && typeof value === "string"
      ? resolvePath(Deno.cwd(), value)
      : value;
  }
  return out;
}

/**
 * `status --all`: every instance whose pidfile is in the default place —
 * `NAME.pid` and `NAME@INSTANCE.pid` — as a table, or a JSON array.
 *
 * @returns 1 when any is dead or failed, else 4 when any cannot be judged,
 * else 0 when all run, else 3 (also when none is found).
 */
async function statusOfAll(
  { libc, def, parsed, options }: Invocation,
): Promise<number> {
  for (const name of ["pidfile", "instance"]) {
    if (parsed.raw[name] !== undefined) {
      throw new UsageError(
        `Option "--all" lists the default locations: it does not take "--${name}"`,
      );
    }
  }
  const { status } = await import("./control.ts");
  const caller = callerOf(libc);
  const dir = dirname(defaultPaths(def.name, caller).pidfile);
  const instances = findInstances(dir, def.name);
  const results = await Promise.all(instances.map(async (instance) => {
    const { core } = inForce(
      def,
      libc,
      instance === null ? {} : { instance },
      "status",
    );
    return await status(libc, instanceName(def.name, instance), core.pidfile!, {
      logsTo: describeLogTo(core),
      instance,
    });
  }));
  if (options.json === true) {
    console.log(JSON.stringify(results.map((r) => r.report), null, 2));
  } else if (results.length === 0) {
    console.log(`No instance of ${def.name} found in ${dir}`);
  } else {
    console.log(statusTable(results.map((r) => r.report)));
  }
  const codes = results.map((r) => r.code);
  return codes.includes(StatusExit.DEAD_WITH_PIDFILE)
    ? StatusExit.DEAD_WITH_PIDFILE
    : codes.includes(StatusExit.UNKNOWN)
    ? StatusExit.UNKNOWN
    : codes.length > 0 && codes.every((c) => c === StatusExit.RUNNING)
    ? StatusExit.RUNNING
    : StatusExit.NOT_RUNNING;
}

/**
 * The instances with a pidfile or an exit record in `dir`: `null` for the
 * one without an instance name. Only names are read here; `status` opens
 * each file with its own checks.
 */
function findInstances(dir: string, name: string): (string | null)[] {
  const found = new Set<string | null>();
  let entries: Deno.DirEntry[];
  try {
    entries = [...Deno.readDirSync(dir)];
  } catch {
    return [];
  }
  for (const { name: file } of entries) {
    const m = file.match(/^(.*)\.(pid|exit)$/);
    if (m === null) continue;
    if (m[1] === name) found.add(null);
    else if (m[1].startsWith(`${name}@`)) {
      const instance = m[1].slice(name.length + 1);
      if (INSTANCE_NAME.test(instance)) found.add(instance);
    }
  }
  return [...found].sort((a, b) => (a ?? "").localeCompare(b ?? ""));
}

/** One line per instance: state, pid, uptime, restarts, last exit. */
function statusTable(reports: StatusReport[]): string {
  const rows = [
    ["INSTANCE", "STATE", "PID", "UPTIME", "RESTARTS", "LAST EXIT"],
    ...reports.map((r) => [
      r.instance ?? "-",
      r.state,
      r.pid === null ? "-" : String(r.pid),
      r.uptime === null ? "-" : formatDuration(r.uptime),
      r.restarts === null ? "-" : String(r.restarts),
      r.lastExit === null
        ? "-"
        : `${r.lastExit.how}${
          r.lastExit.detail ? ` (${r.lastExit.detail})` : ""
        } ${ago(r.lastExit.at)}`,
    ]),
  ];
  const widths = rows[0].map((_, i) =>
    Math.max(...rows.map((row) => row[i].length))
  );
  return rows.map((row) =>
    row.map((cell, i) => i === row.length - 1 ? cell : cell.padEnd(widths[i]))
      .join("  ")
  ).join("\n");
}

/** The path's directory. */
function dirname(path: string): string {
  return path.slice(0, path.lastIndexOf("/")) || "/";
}

/** Write a unit to stdout. */
async function writeUnit(text: string): Promise<void> {
  await Deno.stdout.write(new TextEncoder().encode(text));
}
