/**
 * `unit`: a service definition that runs this program in the foreground
 * (`run`) under a service manager — a systemd unit (`Type=notify`, reload by
 * SIGHUP, hardening) or a launchd property list.
 *
 * @module
 */
import {
  type CoreOptions,
  resolvePath,
  type RestartPolicy,
} from "./options.ts";
import { UsageError } from "./errors.ts";
import { programCommand } from "./program.ts";
import { hasControl, quote } from "./text.ts";

/** What a unit is generated from. */
export interface UnitInput {
  /** The daemon's name. */
  name: string;
  /** One line describing it. */
  description: string;
  /** The command that runs the daemon in the foreground, absolute paths first. */
  command: string[];
  /** Resolved core options. */
  core: CoreOptions;
  /** Target user and group names, when given. */
  user?: string;
  group?: string;
  /** `--restart`, when given: the manager's restart policy (default on-failure). */
  restart?: RestartPolicy;
  /**
   * A unit for a user's own service manager (`systemctl --user`) instead of
   * the system's: it runs as that user, so it names none.
   */
  userUnit?: boolean;
}

/** Options the generated command line leaves out: the unit says them itself. */
const UNIT_OWNED = new Set([
  "<command>",
  "format",
  "user-unit",
  "user",
  "group",
  "restart",
  "restart-delay",
  "restart-reset",
  "max-restarts",
]);

/**
 * The foreground command for a service manager: this program with absolute
 * paths, `run` instead of `unit`, and without the options the unit states
 * itself (`--format`, `--user`, `--group`, the `--restart` ones).
 *
 * @param argv This program's argv as the kernel has it.
 * @param args The arguments after the program (`Deno.args`).
 * @param owners For each of `args`, the option or role it belongs to.
 * @param cwd Where relative paths start.
 * @param isPath Whether an option takes a path (made absolute).
 */
export function serviceCommand(
  argv: readonly string[],
  args: readonly string[],
  owners: readonly string[],
  cwd: string,
  isPath: (option: string) => boolean,
): string[] {
  const prefix = programCommand(argv, args, cwd);
  // systemd starts services in /: a relative path must not change meaning.
  const absolute = (p: string) => resolvePath(cwd, p);
  const kept = args.flatMap((arg, i) => {
    const owner = owners[i];
    if (UNIT_OWNED.has(owner)) return [];
    if (!isPath(owner)) return [arg];
    if (arg.startsWith(`--${owner}=`)) {
      return [`--${owner}=${absolute(arg.slice(owner.length + 3))}`];
    }
    return arg === `--${owner}` ? [arg] : [absolute(arg)];
  });
  return [...prefix, "run", ...kept];
}

/**
 * Refuse text that would end its line early in the generated file (a
 * newline in a path would add a directive of its own), whether it came from
 * an option, the program's own command line or the daemon's definition.
 */
function checkOneLine(input: UnitInput): void {
  const texts: [string, string | undefined][] = [
    ["Description", input.description],
    ...input.command.map((w): [string, string] => ["ExecStart", w]),
    ["User", input.user],
    ["Group", input.group],
    ["ReadWritePaths", input.core.pidfile],
  ];
  for (const [key, text] of texts) {
    if (text !== undefined && hasControl(text)) {
      throw new UsageError(
        `Cannot write ${key}= of the unit: ${
          quote(text)
        } has a control character`,
      );
    }
  }
}

/**
 * One item of a space-separated setting (ReadWritePaths=, an ExecStart
 * word): `%` doubled, as specifiers are expanded inside quotes too, and
 * double-quoted with `\\` and `"` escaped unless plainly safe
 * (systemd.syntax(7), "Quoting").
 */
function systemdItem(text: string): string {
  const escaped = text.replaceAll("%", "%%");
  return /^[A-Za-z0-9_@+=:,./%-]+$/.test(escaped)
    ? escaped
    : `"${escaped.replaceAll("\\", "\\\\").replaceAll('"', '\\"')}"`;
}

/** One ExecStart word: an item, with `$` escaped from variable expansion. */
function systemdWord(word: string): string {
  return systemdItem(word.replaceAll("$", "$$$$"));
}

/** A whole-line value (Description=, User=): only specifiers are expanded. */
function systemdText(text: string): string {
  return text.replaceAll("%", "%%");
}

/** Directories a path lives in that ProtectSystem=strict would make read-only. */
function writableDir(
  path: string | undefined,
  name: string,
): string | undefined {
  if (path === undefined) return undefined;
  const dir = path.slice(0, path.lastIndexOf("/")) || "/";
  return dir === `/run/${name}` || dir === `/var/lib/${name}` ? undefined : dir;
}

/**
 * A systemd service unit.
 *
 * @example
 * ```ts
 * import { systemdUnit } from "./unit.ts";
 * const core = { umask: 0o027, noNewPrivs: true, noCoreDumps: true, stopTimeout: 10 } as never;
 * const unit = systemdUnit({ name: "myd", description: "My daemon", command: ["/usr/bin/myd", "run"], core });
 * console.log(unit.includes("Type=notify")); // true
 * ```
 */
export function systemdUnit(input: UnitInput): string {
  checkOneLine(input);
  if (input.userUnit) return systemdUserUnit(input);
  const { name, core } = input;
  const underHome = input.command.some((w) => /^\/(home|root)(\/|$)/.test(w));
  const rw = [
    ...new Set(
      [writableDir(core.pidfile, name)].filter((d): d is string =>
        d !== undefined
      ),
    ),
  ];
  const lines = [
    "[Unit]",
    `Description=${systemdText(input.description)}`,
    "After=network.target",
    "",
    ...serviceLines(input, [
      ...(input.user ? [`User=${systemdText(input.user)}`] : []),
      ...(input.group ? [`Group=${systemdText(input.group)}`] : []),
    ]),
    "ProtectSystem=strict",
    // The program itself under /home or /root (development) must stay readable.
    underHome ? "ProtectHome=read-only" : "ProtectHome=yes",
    "PrivateTmp=yes",
    `RuntimeDirectory=${name}`,
    `StateDirectory=${name}`,
    ...(rw.length > 0
      ? [`ReadWritePaths=${rw.map(systemdItem).join(" ")}`]
      : []),
    "",
    "[Install]",
    "WantedBy=multi-user.target",
    "",
  ];
  return lines.join("\n");
}

/**
 * What a system unit and a user unit say alike of the service: how it runs,
 * reloads, restarts and stops, and its hardening; `identity` (`User=`,
 * `Group=`) goes before the hardening.
 */
function serviceLines(input: UnitInput, identity: string[]): string[] {
  const { core } = input;
  return [
    "[Service]",
    "Type=notify",
    "NotifyAccess=main",
    `ExecStart=${input.command.map(systemdWord).join(" ")}`,
    "ExecReload=/bin/kill -HUP $MAINPID",
    // The manager supervises: --restart maps onto its own setting.
    `Restart=${input.restart ?? "on-failure"}`,
    ...(input.restart !== undefined && input.restart !== "no"
      ? [`RestartSec=${core.restartDelay}`]
      : []),
    `TimeoutStopSec=${Math.ceil(core.stopTimeout) + 5}`,
    ...identity,
    `UMask=${core.umask.toString(8).padStart(4, "0")}`,
    ...(core.noNewPrivs ? ["NoNewPrivileges=yes"] : []),
    ...(core.noCoreDumps ? ["LimitCORE=0"] : []),
  ];
}

/**
 * A systemd user unit (`~/.config/systemd/user/NAME.service`): what the
 * system unit says, less `User=`/`Group=` and the sandboxing that a user's
 * manager can only apply inside a user namespace (`ProtectSystem=`,
 * `ProtectHome=`, `PrivateTmp=`), which many systems refuse to unprivileged
 * users — the service would then not start at all. Its directories are the
 * user's own (`$XDG_RUNTIME_DIR/NAME`, `~/.local/state/NAME`).
 */
function systemdUserUnit(input: UnitInput): string {
  const { name } = input;
  if (input.user !== undefined || input.group !== undefined) {
    throw new UsageError(
      "A user unit runs as the user whose service manager runs it: drop --user and --group, or make a system unit without --user-unit",
    );
  }
  const lines = [
    "[Unit]",
    `Description=${systemdText(input.description)}`,
    "",
    ...serviceLines(input, []),
    `RuntimeDirectory=${name}`,
    `StateDirectory=${name}`,
    "",
    "[Install]",
    "WantedBy=default.target",
    "",
  ];
  return lines.join("\n");
}

/**
 * The words of a unit's command line that name something under /tmp or
 * /var/tmp, which `PrivateTmp=yes` replaces by an empty directory for the
 * service: the program or a file it was given would not be found there.
 *
 * @example
 * ```ts
 * import { hiddenByPrivateTmp } from "./unit.ts";
 * console.log(hiddenByPrivateTmp(["/tmp/x/myd", "run", "--config=/etc/c.json"]));
 * // [ "/tmp/x/myd" ]
 * ```
 */
export function hiddenByPrivateTmp(command: readonly string[]): string[] {
  return command.filter((w) => /(^|=)\/(var\/)?tmp(\/|$)/.test(w));
}

/** Escape text for XML. */
function xml(text: string): string {
  return text.replaceAll("&", "&amp;").replaceAll("<", "&lt;").replaceAll(
    ">",
    "&gt;",
  )
    .replaceAll('"', "&quot;");
}

/** launchd's `KeepAlive` for a restart policy. */
function keepAlive(restart: RestartPolicy): string[] {
  if (restart === "no") return [];
  if (restart === "always") return [`  <key>KeepAlive</key>`, `  <true/>`];
  return [
    `  <key>KeepAlive</key>`,
    `  <dict>`,
    `    <key>SuccessfulExit</key>`,
    `    <false/>`,
    `  </dict>`,
  ];
}

/** A launchd property list (macOS). */
export function launchdPlist(input: UnitInput): string {
  checkOneLine(input);
  const args = input.command.map((w) => `    <string>${xml(w)}</string>`);
  const lines = [
    `<?xml version="1.0" encoding="UTF-8"?>`,
    `<!DOCTYPE plist PUBLIC "-//Apple//DTD PLIST 1.0//EN" "http://www.apple.com/DTDs/PropertyList-1.0.dtd">`,
    `<plist version="1.0">`,
    `<dict>`,
    `  <key>Label</key>`,
    `  <string>${xml(input.name)}</string>`,
    `  <key>ProgramArguments</key>`,
    `  <array>`,
    ...args,
    `  </array>`,
    `  <key>RunAtLoad</key>`,
    `  <true/>`,
    ...keepAlive(input.restart ?? "on-failure"),
    `  <key>ProcessType</key>`,
    `  <string>Background</string>`,
    `  <key>Umask</key>`,
    `  <integer>${input.core.umask}</integer>`,
    ...(input.user
      ? [`  <key>UserName</key>`, `  <string>${xml(input.user)}</string>`]
      : []),
    ...(input.group
      ? [`  <key>GroupName</key>`, `  <string>${xml(input.group)}</string>`]
      : []),
    `</dict>`,
    `</plist>`,
    "",
  ];
  return lines.join("\n");
}
