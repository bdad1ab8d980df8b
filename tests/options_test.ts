import assert from "node:assert/strict";
import { getLogLevels } from "@logtape/logtape";
import {
  checkSpecs,
  LOG_LEVELS,
  parseSeconds,
  parseUmask,
  resolvePath,
  validateOption,
} from "../src/options.ts";
import { parseCommandLine } from "../src/parse.ts";
import { defaultPaths, resolveOptions } from "../src/resolve.ts";
import { UsageError } from "../src/errors.ts";

const SPECS = {
  port: {
    type: "integer",
    description: "Port",
    default: 8000,
    min: 0,
    max: 65535,
  },
  config: { type: "path", description: "Config" },
  verbose: { type: "boolean", description: "More" },
} as const;

Deno.test("parseCommandLine() splits the command from option values", () => {
  const { command, raw } = parseCommandLine([
    "start",
    "--port=9",
    "--config",
    "c.json",
    "--verbose",
  ], SPECS);
  assert.equal(command, "start");
  assert.deepEqual([raw.port, raw.config, raw.verbose], ["9", "c.json", true]);
  assert.equal(parseCommandLine([], SPECS).command, "help");
  assert.equal(parseCommandLine(["stop", "-h"], SPECS).command, "help");
  assert.equal(parseCommandLine(["--version"], SPECS).command, "version");
});

Deno.test("parseCommandLine() rejects unknown commands, options, missing values and stray arguments", () => {
  const cases: [string[], RegExp][] = [
    [["strat"], /^Unknown command "strat"$/],
    [["start", "--bogus"], /^Unknown option "--bogus"$/],
    [["start", "--pidfile"], /^Option "--pidfile" needs a value$/],
    [["start", "extra"], /^Unexpected argument "extra"$/],
    [["start", "-x"], /^Unknown option "-x"$/],
  ];
  for (const [args, message] of cases) {
    assert.throws(() => parseCommandLine(args, SPECS), (err: unknown) => {
      assert.ok(err instanceof UsageError, String(err));
      assert.match(err.message, message);
      assert.equal(err.exitCode, 2);
      return true;
    });
  }
});

Deno.test("parseCommandLine() reads --syslog alone as facility daemon and wants any other value attached with =", () => {
  const raw = (args: string[]) => parseCommandLine(args, SPECS).raw;
  assert.equal(raw(["start", "--syslog"]).syslog, "daemon");
  assert.equal(raw(["--syslog", "start"]).syslog, "daemon");
  assert.equal(raw(["start", "--syslog=local0"]).syslog, "local0");
  for (
    const args of [["start", "--syslog", "local0"], [
      "--syslog",
      "local0",
      "start",
    ]]
  ) {
    assert.throws(() => parseCommandLine(args, SPECS), (err: unknown) => {
      assert.ok(err instanceof UsageError, String(err));
      assert.equal(
        err.message,
        `Option "--syslog" takes its value after "=": write --syslog=local0`,
      );
      return true;
    });
  }
  // A daemon's own option can have an optional value the same way.
  const own = {
    color: { type: "string", description: "", bare: "auto" },
  } as const;
  assert.equal(parseCommandLine(["run", "--color"], own).raw.color, "auto");
  assert.equal(parseCommandLine(["run", "--color=no"], own).raw.color, "no");
});

/** A command line the parser takes: its command, raw values and owners. */
type Accepted = [
  args: string[],
  command: string,
  raw: Record<string, string | boolean>,
  owners: string[],
];

/** GNU-style command lines the parser takes, and what it makes of each. */
const ACCEPTED: Accepted[] = [
  [["start", "--port=8000"], "start", { port: "8000" }, ["<command>", "port"]],
  [["start", "--port", "8000"], "start", { port: "8000" }, [
    "<command>",
    "port",
    "port",
  ]],
  // Attached, a value may start with "-"; "-" alone is a value anyway.
  [["start", "--port=-5"], "start", { port: "-5" }, ["<command>", "port"]],
  [["start", "--pidfile", "-"], "start", { pidfile: "-" }, [
    "<command>",
    "pidfile",
    "pidfile",
  ]],
  [["start", "--port="], "start", { port: "" }, ["<command>", "port"]],
  [["start", "--port", ""], "start", { port: "" }, [
    "<command>",
    "port",
    "port",
  ]],
  [["start", "--port=1=2"], "start", { port: "1=2" }, ["<command>", "port"]],
  // Options come before or after the command; a repeated one: the last wins.
  [["--port", "1", "start", "--port", "2"], "start", { port: "2" }, [
    "port",
    "port",
    "<command>",
    "port",
    "port",
  ]],
  [["start", "--verbose", "--verbose"], "start", { verbose: true }, [
    "<command>",
    "verbose",
    "verbose",
  ]],
  [[], "help", {}, []],
  [["-h"], "help", { help: true }, ["help"]],
  [["-V"], "version", { version: true }, ["version"]],
  [["stop", "--version"], "version", { version: true }, [
    "<command>",
    "version",
  ]],
  // Grouped short flags; --help wins over --version and over the command.
  [["start", "-hV"], "help", { help: true, version: true }, [
    "<command>",
    "version",
  ]],
  [["-Vh"], "help", { version: true, help: true }, ["help"]],
  [["-hhh"], "help", { help: true }, ["help"]],
  [["start", "--port", "1", "-h"], "help", { port: "1", help: true }, [
    "<command>",
    "port",
    "port",
    "help",
  ]],
  // "--" ends the options: what follows is the command, or stray.
  [["--", "start"], "start", {}, ["--", "<command>"]],
  [["start", "--"], "start", {}, ["<command>", "--"]],
  [["--"], "help", {}, ["--"]],
  // A bare optional value: alone, before the command, before an option.
  [["start", "--syslog"], "start", { syslog: "daemon" }, [
    "<command>",
    "syslog",
  ]],
  [["--syslog", "start"], "start", { syslog: "daemon" }, [
    "syslog",
    "<command>",
  ]],
  [["start", "--syslog", "--port", "1"], "start", {
    syslog: "daemon",
    port: "1",
  }, ["<command>", "syslog", "port", "port"]],
  [["start", "--syslog", "--"], "start", { syslog: "daemon" }, [
    "<command>",
    "syslog",
    "--",
  ]],
  [["start", "--syslog=local0"], "start", { syslog: "local0" }, [
    "<command>",
    "syslog",
  ]],
  // Checked against the choices later, by validation.
  [["start", "--syslog=bogus"], "start", { syslog: "bogus" }, [
    "<command>",
    "syslog",
  ]],
  [["start", "--syslog="], "start", { syslog: "" }, ["<command>", "syslog"]],
];

Deno.test("parseCommandLine() takes GNU-style options: each command line, its values and which argument is whose", () => {
  for (const [args, command, raw, owners] of ACCEPTED) {
    const parsed = parseCommandLine(args, SPECS);
    const what = JSON.stringify(args);
    assert.equal(parsed.command, command, what);
    assert.deepEqual({ ...parsed.raw }, raw, what);
    assert.deepEqual(parsed.owners, owners, what);
  }
  // Names of Object.prototype are not values nobody gave.
  const { raw } = parseCommandLine(["start"], SPECS);
  assert.equal(raw.constructor, undefined);
  assert.equal(raw.__proto__, undefined);
});

/** Command lines the parser refuses, and its one-line message. */
const REFUSED: [string[], string][] = [
  // A value that starts with "-" must be attached with "=".
  [
    ["start", "--port", "-5"],
    `Option "--port" has a value starting with "-": write it as --port=VALUE`,
  ],
  [
    ["start", "--port", "--"],
    `Option "--port" has a value starting with "-": write it as --port=VALUE`,
  ],
  [
    ["start", "--pidfile", "-h"],
    `Option "--pidfile" has a value starting with "-": write it as --pidfile=VALUE`,
  ],
  [["start", "--port"], `Option "--port" needs a value`],
  [["start", "--port", "1", "--pidfile"], `Option "--pidfile" needs a value`],
  // A flag takes no value.
  [["start", "--verbose=true"], `Option "--verbose" takes no value`],
  [["start", "--clear-env=yes"], `Option "--clear-env" takes no value`],
  [["start", "--clear-env="], `Option "--clear-env" takes no value`],
  [["start", "--help=1"], `Option "--help" takes no value`],
  [["start", "--version=1"], `Option "--version" takes no value`],
  // Unknown options, named as given.
  [["start", "-x"], `Unknown option "-x"`],
  [["start", "-hx"], `Unknown option "-x"`],
  [["start", "-xh"], `Unknown option "-x"`],
  [["start", "-h=1"], `Unknown option "-="`],
  [["start", "-p", "1"], `Unknown option "-p"`],
  [["start", "---port", "1"], `Unknown option "---port"`],
  [["start", "--=1"], `Unknown option "--=1"`],
  [["start", "--port8000"], `Unknown option "--port8000"`],
  [["start", "--Port=1"], `Unknown option "--Port"`],
  [["start", "--no-verbose"], `Unknown option "--no-verbose"`],
  [["start", "--constructor"], `Unknown option "--constructor"`],
  [["start", "--__proto__=1"], `Unknown option "--__proto__"`],
  // Named whole, and safe to print: a character, not half of one; no raw
  // control character reaches the terminal.
  [["start", "-\u{1f600}"], `Unknown option "-\u{1f600}"`],
  [["start", "--it's"], `Unknown option "--it's"`],
  [["start", "--a\u009bb"], `Unknown option "--a\\u009bb"`],
  // A bare optional value given a choice as the next argument.
  [
    ["start", "--syslog", "local0"],
    `Option "--syslog" takes its value after "=": write --syslog=local0`,
  ],
  [["start", "--syslog", "bogus"], `Unexpected argument "bogus"`],
  // The first mistake is the one named; after "--" nothing is an option.
  [
    ["start", "--bogus", "--syslog", "local0"],
    `Unknown option "--bogus"`,
  ],
  [["start", "--", "--syslog"], `Unexpected argument "--syslog"`],
  // Stray arguments, also after "--"; an option's mistake is named first.
  [["start", "--", "x"], `Unexpected argument "x"`],
  [["start", "--", "--port"], `Unexpected argument "--port"`],
  [["start", "-"], `Unexpected argument "-"`],
  [["now", "start"], `Unexpected argument "start"`],
  [["start", "extra", "--bogus"], `Unknown option "--bogus"`],
  [["start", "extra", "-h"], `Unexpected argument "extra"`],
  [["bogus", "-h"], `Unknown command "bogus"`],
  [["", "--port=1"], `Unknown command ""`],
];

Deno.test("parseCommandLine() refuses each malformed command line with a usage error in one line", () => {
  for (const [args, message] of REFUSED) {
    const what = JSON.stringify(args);
    assert.throws(() => parseCommandLine(args, SPECS), (err: unknown) => {
      assert.ok(err instanceof UsageError, `${what}: ${err}`);
      assert.equal(err.message, message, what);
      assert.match(err.message, /^[A-Z][^\n]*[^.]$/, what);
      return true;
    }, what);
  }
});

Deno.test("validateOption() checks integers against their range and resolves paths", () => {
  assert.equal(validateOption("port", SPECS.port, "0", "/"), 0);
  assert.equal(validateOption("port", SPECS.port, undefined, "/"), 8000);
  for (
    const bad of [
      "-1",
      "65536",
      "8o",
      "",
      "1e3",
      "0x10",
      " 80",
      "99999999999999999999",
    ]
  ) {
    assert.throws(
      () => validateOption("port", SPECS.port, bad, "/"),
      UsageError,
      bad,
    );
  }
  assert.equal(
    validateOption("config", SPECS.config, "../x/./c.json", "/srv/app"),
    "/srv/x/c.json",
  );
  assert.equal(
    validateOption("config", SPECS.config, undefined, "/"),
    undefined,
  );
  assert.throws(
    () => validateOption("config", SPECS.config, "", "/"),
    UsageError,
  );
});

Deno.test("validateOption() refuses a path longer than PATH_MAX or with a name longer than NAME_MAX, in bytes", () => {
  const ok = (path: string, cwd = "/") =>
    validateOption("config", SPECS.config, path, cwd) as string;
  const tooLong = (path: string, cwd = "/") =>
    assert.throws(() => ok(path, cwd), (err: unknown) => {
      assert.ok(err instanceof UsageError, String(err));
      assert.match(
        err.message,
        /^Invalid value for --config: ".*" \(expected a path under 4096 bytes, each name at most 255 bytes\)$/,
      );
      return true;
    });
  const name255 = "x".repeat(255);
  assert.equal(ok(`/${name255}`), `/${name255}`);
  tooLong(`/${name255}x`);
  // Bytes, not characters: 128 two-byte letters are 256 bytes.
  assert.equal(ok(`/${"é".repeat(127)}`), `/${"é".repeat(127)}`);
  tooLong(`/${"é".repeat(128)}`);
  // 4095 bytes fit with the terminating NUL; 4096 do not.
  const longest = `/${"d/".repeat(2046)}xy`;
  assert.equal(new TextEncoder().encode(longest).length, 4095);
  assert.equal(ok(longest), longest);
  tooLong(`${longest}z`);
  // What counts is the path after resolving it against the directory.
  tooLong("xy", `/${"d/".repeat(2046)}z`);
  assert.equal(ok("../xy", `/${"d/".repeat(2046)}z`), longest);
});

Deno.test("parseSeconds() and parseUmask() accept only sane values", () => {
  assert.equal(parseSeconds("t", "1.5"), 1.5);
  for (const bad of ["0", "-1", "abc", "1e2", "86401", "", "1.", ".5"]) {
    assert.throws(() => parseSeconds("t", bad), UsageError, bad);
  }
  assert.equal(parseUmask("027"), 0o027);
  assert.equal(parseUmask("0"), 0);
  assert.equal(parseUmask("0777"), 0o777);
  for (const bad of ["8", "0888", "1000", "-1", "", "0o22", "u=rwx"]) {
    assert.throws(() => parseUmask(bad), UsageError, bad);
  }
});

Deno.test("resolvePath() folds . and .. and never climbs above /", () => {
  assert.equal(resolvePath("/a/b", "c"), "/a/b/c");
  assert.equal(resolvePath("/a/b", "/x//y/"), "/x/y");
  assert.equal(resolvePath("/a", "../../../etc"), "/etc");
});

Deno.test("defaultPaths() uses /run and /var/log for root and a private directory otherwise", () => {
  const env = (vars: Record<string, string>) => (n: string) => vars[n];
  assert.deepEqual(defaultPaths("d", { euid: 0, cwd: "/", env: env({}) }), {
    pidfile: "/run/d.pid",
    logFile: "/var/log/d.log",
    privateDir: undefined,
  });
  const user = defaultPaths("d", {
    euid: 1000,
    cwd: "/",
    env: env({ HOME: "/home/u" }),
  });
  assert.equal(user.pidfile, "/home/u/.local/state/d/d.pid");
  assert.equal(user.privateDir, "/home/u/.local/state/d");
  const xdg = defaultPaths("d", {
    euid: 1000,
    cwd: "/",
    env: env({ HOME: "/h", XDG_STATE_HOME: "/s" }),
  });
  assert.equal(xdg.logFile, "/s/d/d.log");
  // A relative XDG_STATE_HOME is ignored, as the XDG spec says.
  const rel = defaultPaths("d", {
    euid: 1000,
    cwd: "/",
    env: env({ HOME: "/h", XDG_STATE_HOME: "s" }),
  });
  assert.equal(rel.pidfile, "/h/.local/state/d/d.pid");
  for (const p of [user, xdg, rel]) assert.ok(!p.pidfile.startsWith("/tmp"));
});

Deno.test("resolveOptions() applies defaults; run uses a pidfile only when asked", () => {
  const caller = { euid: 0, cwd: "/srv", env: () => undefined };
  const { core, payload } = resolveOptions(
    "d",
    SPECS,
    { port: "81" },
    caller,
    false,
  );
  assert.equal(core.pidfile, "/run/d.pid");
  assert.equal(core.umask, 0o027);
  assert.equal(core.chdir, "/");
  assert.equal(core.readyTimeout, 30);
  assert.equal(core.stopTimeout, 10);
  assert.equal(core.logLevel, "info");
  assert.deepEqual(payload, { port: 81, config: undefined, verbose: false });
  assert.equal(
    resolveOptions("d", SPECS, {}, caller, true).core.pidfile,
    undefined,
  );
  assert.equal(
    resolveOptions("d", SPECS, { pidfile: "p.pid" }, caller, true).core.pidfile,
    "/srv/p.pid",
  );
  assert.throws(
    () => resolveOptions("d", SPECS, { "log-level": "loud" }, caller, false),
    /--log-level/,
  );
});

Deno.test("LOG_LEVELS matches LogTape's own list", () => {
  assert.deepEqual([...LOG_LEVELS], [...getLogLevels()]);
});

Deno.test("checkSpecs() refuses option names denod reserves or cannot parse", () => {
  assert.throws(
    () => checkSpecs({ pidfile: { type: "path", description: "" } }),
    /reserved/,
  );
  assert.throws(
    () => checkSpecs({ Port: { type: "string", description: "" } }),
    /lower-case/,
  );
  checkSpecs(SPECS);
});

Deno.test("checkSpecs() refuses a default or bare value that is not one of the choices", () => {
  const level = (extra: Record<string, string>) => ({
    level: {
      type: "string" as const,
      description: "",
      choices: ["low", "high"],
      ...extra,
    },
  });
  assert.throws(
    () => checkSpecs(level({ default: "medium" })),
    /Option "level" has default "medium", which is not one of its choices/,
  );
  assert.throws(
    () => checkSpecs(level({ bare: "max" })),
    /Option "level" has bare "max", which is not one of its choices/,
  );
  checkSpecs(level({ default: "low", bare: "high" }));
});

Deno.test("parseCommandLine() takes short options GNU style: attached, next argument, grouped", () => {
  const specs = {
    count: { type: "integer", short: "c", description: "" },
    quiet: { type: "boolean", short: "q", description: "" },
    tone: { type: "string", short: "t", bare: "low", description: "" },
  } as const;
  const cases: [string[], Record<string, unknown>, string[]][] = [
    [["start", "-c5"], { count: "5" }, ["<command>", "count"]],
    [["start", "-c", "5"], { count: "5" }, ["<command>", "count", "count"]],
    [["start", "-qc", "5"], { quiet: true, count: "5" }, [
      "<command>",
      "count",
      "count",
    ]],
    [["start", "-qc5"], { quiet: true, count: "5" }, ["<command>", "count"]],
    // The value takes the rest of the group, flags and all.
    [["start", "-cq"], { count: "q" }, ["<command>", "count"]],
    [["start", "-c", "-"], { count: "-" }, ["<command>", "count", "count"]],
    [["start", "-t"], { tone: "low" }, ["<command>", "tone"]],
    [["start", "-thigh", "-q"], { tone: "high", quiet: true }, [
      "<command>",
      "tone",
      "quiet",
    ]],
    [["-hc", "1", "start"], { help: true, count: "1" }, [
      "count",
      "count",
      "<command>",
    ]],
  ];
  for (const [args, raw, owners] of cases) {
    const parsed = parseCommandLine(args, specs);
    assert.deepEqual({ ...parsed.raw }, raw, JSON.stringify(args));
    assert.deepEqual(parsed.owners, owners, JSON.stringify(args));
  }
  const refused: [string[], string][] = [
    [["start", "-c"], `Option "-c" needs a value`],
    [["start", "-qc"], `Option "-c" needs a value`],
    [
      ["start", "-c", "-5"],
      `Option "-c" has a value starting with "-": write it as -cVALUE`,
    ],
    [["start", "-qx"], `Unknown option "-x"`],
  ];
  for (const [args, message] of refused) {
    assert.throws(() => parseCommandLine(args, specs), { message });
  }
});

Deno.test("checkSpecs() refuses a short name that is not one letter or is taken", () => {
  const one = (short: string) => ({
    a: { type: "boolean", description: "", short },
  } as const);
  assert.throws(() => checkSpecs(one("ab")), /not one letter or digit/);
  assert.throws(() => checkSpecs(one("-")), /not one letter or digit/);
  assert.throws(() => checkSpecs(one("h")), /which denod already uses/);
  assert.throws(
    () =>
      checkSpecs({
        a: { type: "boolean", description: "", short: "x" },
        b: { type: "integer", description: "", short: "x" },
      }),
    /short name "x", which option "b" already uses/,
  );
  checkSpecs(one("x"));
});
