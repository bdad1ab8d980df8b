/**
 * A few hundred malformed command lines: each must be refused as a usage
 * error (exit 2) in one line with the usage, no stack trace, and nothing
 * started. Values are generated from lists of the usual ways input goes
 * wrong: empty, huge, negative, octal and hex junk, Unicode digits, unknown
 * users, dashes, stray arguments.
 *
 * Every case goes through the steps the CLI takes before it acts (parse,
 * resolve, look up the user) in this process; a sample of them, covering
 * every command, option and spelling, goes through the real program. Three
 * hundred Deno boots would cost a minute of CPU on a busy two-core machine
 * for what the in-process check already proves.
 */
import assert from "node:assert/strict";
import { cli, EXAMPLE, pooled, withScratch } from "./helpers.ts";
import { parseCommandLine } from "../src/parse.ts";
import { resolveOptions } from "../src/resolve.ts";
import { requireRoot, resolveIdentity } from "../src/privileges.ts";
import { UsageError } from "../src/errors.ts";
import { CORE_OPTIONS } from "../src/options.ts";
import { libc } from "../ffi/mod.ts";
import { daemon } from "../daemon.ts";

const HUGE = "9".repeat(5000);
/** A name over NAME_MAX, and a path over PATH_MAX made of short names. */
const LONG_NAME = `/tmp/${"n".repeat(256)}`;
const LONG_PATH = `/${"d/".repeat(2048)}x`;
const BAD: Record<string, string[]> = {
  port: [
    "",
    "-1",
    "65536",
    "1e3",
    "0x50",
    "\uff18\uff10",
    " 80",
    "80 ",
    HUGE,
    "NaN",
    "+80",
    "8_0",
    "80.0",
    "Infinity",
  ],
  umask: [
    "",
    "8",
    "0888",
    "-022",
    "0o22",
    "u=rwx",
    "7777",
    "abc",
    "0".repeat(300),
    " 022",
    "0x12",
  ],
  "ready-timeout": [
    "",
    "0",
    "-1",
    "1e3",
    "abc",
    "86401",
    "1.2345",
    ".5",
    "Infinity",
    "0x10",
    HUGE,
    "1,5",
  ],
  "stop-timeout": ["", "0", "-0", "NaN", "10s", "\u0661\u0660", "1/2"],
  "log-level": [
    "",
    "WARN",
    "verbose",
    "info ",
    "x".repeat(300),
    "Info",
    "warn",
  ],
  user: [
    "no-such-user-denod",
    "",
    "4294967296",
    "root:root",
    "a b",
    "x".repeat(300),
    "../etc",
    "rööt",
    "-",
    "$",
  ],
  group: ["no-such-group-denod", "", "4294967296", "g g", "x".repeat(300), "-"],
  pidfile: [
    "",
    LONG_NAME,
    LONG_PATH,
    "/tmp/x\nExecStartPre=/bin/sh -c id",
    "x\u001b[2J",
    "x\u009by",
  ],
  "log-file": ["", LONG_NAME, LONG_PATH, "x\ry", "x\u007f"],
  chdir: ["", LONG_NAME, LONG_PATH, "/tmp\n", "\t/tmp"],
  config: ["", LONG_NAME, "c\u0085.json"],
  host: ["127.0.0.1\n", "\u001b]0;title\u0007"],
  format: ["bogus", "systemd\n"],
};
/** A control character other than a line break, as a terminal would get it. */
// deno-lint-ignore no-control-regex
const RAW_CONTROL = /[\u0000-\u0009\u000b-\u001f\u007f-\u009f]/;
const COMMANDS = [
  "start",
  "stop",
  "status",
  "reload",
  "run",
  "restart",
  "unit",
];
const STRAYS: string[][] = [
  ["strat"],
  [""],
  [" start"],
  ["START"],
  ["start", "now"],
  ["start", "--"],
  ["start", "--", "x"],
  ["start", "--nope"],
  ["start", "-x"],
  ["start", "-Vx"],
  ["start", "--port8000"],
  ["start", "---port", "1"],
  ["start", "--=1"],
  ["start", "--pidfile"],
  ["start", "--user"],
  ["start", "--port", "-5"],
  ["start", "--umask", "-0"],
  ["start", "--help=1"],
  ["start", "--clear-env=yes"],
  ["start", `--${"x".repeat(3000)}`],
  ["start", "-"],
  ["status", "extra", "args"],
  ["run", "--host"],
  ["help", "me"],
  ["start", "stop"],
  ["start", "--port", "\u00a0"],
  ["reload", "--stop-timeout=-"],
  ["stop", "--port", "x"],
];

/**
 * Every malformed command line: each bad value with each command in turn,
 * and the strays. The sample keeps each option's first value in both
 * spellings (which rotates through every command) and every third stray.
 */
function cases(paths: string[], sample = false): string[][] {
  const out: string[][] = [];
  let i = 0;
  for (const [option, values] of Object.entries(BAD)) {
    values.forEach((value, v) => {
      for (let k = 0; k < 4; k++) {
        const command = COMMANDS[i++ % COMMANDS.length];
        if (sample && (v > 0 || k > 1)) continue;
        // Both spellings: --opt=value and --opt value (the latter only where
        // the value cannot be read as an option itself).
        const given = k % 2 === 0 || value.startsWith("-")
          ? [`--${option}=${value}`]
          : [`--${option}`, value];
        out.push([command, ...paths, ...given]);
      }
    });
  }
  const strays = STRAYS.filter((_, n) => !sample || n % 3 === 0);
  return [...out, ...strays.map((c) => [...c, ...paths])];
}

/** What the CLI does with a command line before it acts, as in src/cli.ts. */
function refusal(args: string[]): unknown {
  const specs = daemon.definition.options ?? {};
  const c = libc();
  const caller = { euid: c.geteuid(), cwd: Deno.cwd(), env: Deno.env.get };
  try {
    const { command, raw } = parseCommandLine(args, specs);
    const { core } = resolveOptions(
      daemon.definition.name,
      specs,
      raw,
      caller,
      command === "run" || command === "unit",
    );
    requireRoot(c, resolveIdentity(c, core.user, core.group));
  } catch (err) {
    return err;
  }
  return undefined;
}

Deno.test("hundreds of malformed command lines are each refused as a usage error in one sentence", () => {
  const all = cases(["--pidfile", "/nonexistent/d.pid"]);
  assert.ok(all.length >= 300, `only ${all.length} cases`);
  for (const args of all) {
    const what = JSON.stringify(args).slice(0, 160);
    const err = refusal(args);
    assert.ok(err instanceof UsageError, `${what}: ${err ?? "accepted"}`);
    assert.match(err.message, /^[A-Z][^\n]*[^.]$/, what);
  }
});

Deno.test("a sample of malformed command lines through the real program exit 2 with one line and the usage, no stack trace, nothing started", async () => {
  await withScratch(async (s) => {
    const sample = cases(s.paths, true);
    for (const command of COMMANDS) {
      assert.ok(sample.some((args) => args[0] === command), command);
    }
    // As many at once as there are cores: more Deno boots only queue.
    const results = await pooled(
      sample,
      navigator.hardwareConcurrency,
      (args) => cli(EXAMPLE, args, { cwd: s.dir }),
    );
    results.forEach((r, i) => {
      const what = JSON.stringify(sample[i]).slice(0, 160);
      assert.equal(
        r.code,
        2,
        `${what}: exit ${r.code}\n${r.stdout}${r.stderr}`,
      );
      const lines = r.stderr.trimEnd().split("\n");
      assert.equal(lines.length, 2, `${what}:\n${r.stderr}`);
      assert.match(lines[0], /^denod-example: [A-Z][^\n]*[^.]$/, what);
      assert.match(lines[1], /^Usage: /, what);
      assert.doesNotMatch(r.stderr, /\bat .*:\d+:\d+|Error:|Uncaught/, what);
      assert.doesNotMatch(r.stderr, RAW_CONTROL, what);
      assert.equal(r.stdout, "", what);
    });
    // Relative paths mean the scratch directory: nothing may appear there.
    assert.deepEqual([...Deno.readDirSync(s.dir)], [], "nothing was created");
  });
});

Deno.test("control characters in any value, of any option and type, are refused as a usage error naming the option", () => {
  // NUL cannot pass through argv, so this is checked in-process too.
  const specs = daemon.definition.options!;
  const caller = { euid: 0, cwd: "/", env: () => undefined };
  const options = [
    ...Object.keys(CORE_OPTIONS).filter((o) =>
      CORE_OPTIONS[o as keyof typeof CORE_OPTIONS].type !== "boolean"
    ),
    ...Object.keys(specs),
  ];
  for (const option of options) {
    // Each character, and how the message shows it.
    for (
      const [c, shown] of [
        ["\0", "\\u0000"],
        ["\n", "\\n"],
        ["\r", "\\r"],
        ["\t", "\\t"],
        ["\u001b", "\\u001b"],
        ["\u007f", "\\u007f"],
        ["\u0085", "\\u0085"],
        ["\u009b", "\\u009b"],
      ]
    ) {
      const { raw } = parseCommandLine(["start", `--${option}=a${c}b`], specs);
      assert.throws(
        () => resolveOptions("d", specs, raw, caller, false),
        (err: unknown) => {
          assert.ok(err instanceof UsageError, String(err));
          assert.equal(
            err.message,
            `Invalid value for --${option}: "a${shown}b" (expected no control characters)`,
          );
          return true;
        },
        `--${option} with ${shown}`,
      );
    }
  }
});
