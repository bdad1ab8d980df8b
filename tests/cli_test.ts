/**
 * The command line through the real program: help, version, and bad input
 * that must end in exit 2 with one line and no stack trace, starting nothing.
 */
import assert from "node:assert/strict";
import { cli, EXAMPLE, sh, shq } from "./helpers.ts";

Deno.test("help lists every command and option; version names the runtime", async () => {
  const help = await cli(EXAMPLE, ["help"]);
  assert.equal(help.code, 0);
  for (
    const word of [
      "start",
      "stop",
      "restart",
      "status",
      "reload",
      "run",
      "--pidfile PATH",
      "--port N",
      "--umask",
      // As parsed: a facility only with "=".
      "--syslog[=FACILITY]",
    ]
  ) {
    assert.ok(help.stdout.includes(word), word);
  }
  const version = await cli(EXAMPLE, ["version"]);
  assert.equal(version.code, 0);
  assert.match(
    version.stdout,
    /^denod-example 0\.1\.0 \(deno \d+\.\d+\.\d+, [\w-]+, deno run\)\n$/,
  );
});

Deno.test("the modules every process loads (down to the session leader), the caller of each command and the supervisor load nothing from Node or npm; the session leader loads neither start nor the control commands; the daemon leaves out the parser", async () => {
  // LogTape (through npm) starts Node compatibility, tens of milliseconds of
  // each boot and megabytes that a long-lived supervisor would keep; only
  // the daemon imports it, dynamically.
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["info", "--json", EXAMPLE],
    env: { NO_COLOR: "1" },
  }).output();
  assert.ok(out.success, new TextDecoder().decode(out.stderr));
  type Dep = {
    specifier: string;
    isDynamic?: boolean;
    code?: { specifier: string };
  };
  const graph = JSON.parse(new TextDecoder().decode(out.stdout)) as {
    roots: string[];
    modules: { specifier: string; dependencies?: Dep[] }[];
  };
  const bySpecifier = new Map(graph.modules.map((m) => [m.specifier, m]));
  /** Every module loaded statically from `roots`. */
  const loaded = (roots: string[]) => {
    const seen = new Set<string>();
    const stack = [...roots];
    while (stack.length > 0) {
      const spec = stack.pop()!;
      if (seen.has(spec)) continue;
      seen.add(spec);
      for (const dep of bySpecifier.get(spec)?.dependencies ?? []) {
        if (!dep.isDynamic && dep.code !== undefined) {
          stack.push(dep.code.specifier);
        }
      }
    }
    return [...seen];
  };
  const heavy = (modules: string[]) =>
    modules.filter((s) =>
      s.includes("/node_modules/") || s.startsWith("node:") ||
      s.startsWith("npm:")
    );
  const everyProcess = loaded(graph.roots);
  assert.deepEqual(heavy(everyProcess), []);
  assert.ok(
    everyProcess.some((s) => s.endsWith("/src/cli.ts")),
    "the walk reached the CLI",
  );
  // Each command imports its own implementation: the session leader, which
  // loads only what every process loads and its own module, compiles none.
  const leader = graph.modules.find((m) =>
    m.specifier.endsWith("/src/leader.ts")
  );
  assert.ok(leader, "the session leader is in the graph");
  const leaderLoads = loaded([...graph.roots, leader.specifier]);
  for (
    const file of [
      "/src/start.ts",
      "/src/control.ts",
      "/src/parse.ts",
      "/src/serve.ts",
      "/src/log.ts",
    ]
  ) {
    assert.ok(!leaderLoads.some((s) => s.endsWith(file)), file);
  }
  // The caller of a command (`start`, `stop`, `status`, `unit`, …) adds what
  // it imports dynamically: the parser, and for `unit` the unit writer.
  // (`run` is the daemon itself: see below.)
  const dynamic = (file: string) => {
    const module = graph.modules.find((m) => m.specifier.endsWith(file));
    assert.ok(module, `${file} is in the graph`);
    return module.specifier;
  };
  const caller = loaded([
    ...graph.roots,
    dynamic("/src/parse.ts"),
    dynamic("/src/unit.ts"),
  ]);
  assert.deepEqual(heavy(caller), []);
  const supervise = graph.modules.find((m) =>
    m.specifier.endsWith("/src/supervise.ts")
  );
  assert.ok(supervise, "the supervisor is in the graph");
  assert.deepEqual(heavy(loaded([...graph.roots, supervise.specifier])), []);
  // The daemon takes its settings from `start`: it loads the logger, not the
  // command-line parser.
  const serve = graph.modules.find((m) =>
    m.specifier.endsWith("/src/serve.ts")
  );
  assert.ok(serve, "serve is in the graph");
  const daemon = loaded([...graph.roots, serve.specifier]);
  assert.ok(!daemon.some((s) => s.endsWith("/src/parse.ts")), "no parser");
  assert.ok(!daemon.includes("node:util"), "no node:util");
});

Deno.test("the README's CLI reference is the program's own help", async () => {
  const { renderReadme } = await import("../scripts/docs.ts");
  const readme = Deno.readTextFileSync(
    new URL("../README.md", import.meta.url),
  );
  assert.equal(readme, renderReadme(readme), "run: deno task docs");
});

Deno.test("without FFI (--deny-ffi), help, version and unit work, and start, stop, status, reload and restart say in one line that they need FFI (run: without_libc_test)", async () => {
  const run = (command: string) =>
    sh(
      [Deno.execPath(), "run", "-A", "--deny-ffi", EXAMPLE, command].map(shq)
        .join(" "),
    );
  const help = await run("help");
  assert.equal(help.code, 0, help.stderr);
  assert.match(help.stdout, /^Usage: denod-example <command> \[options\]$/m);
  const version = await run("version");
  assert.equal(version.code, 0, version.stderr);
  const unit = await run("unit");
  assert.equal(unit.code, 0, unit.stderr);
  assert.match(unit.stdout, /^ExecStart=.* run -A .*daemon\.ts run$/m);
  for (
    const command of ["start", "stop", "status", "reload", "restart"]
  ) {
    const r = await run(command);
    assert.equal(r.code, 4, `${command}: ${r.stdout}${r.stderr}`);
    assert.equal(
      r.stderr,
      `denod-example: ${command} needs FFI to call libc: run it with --allow-ffi (deno run -A, or a binary compiled with it)\n`,
    );
    assert.equal(r.stdout, "");
  }
});

Deno.test("an option given to npm instead of the program gets a hint to put it after --", async () => {
  // `npm start --port 8080` runs `daemon.ts start 8080`.
  const r = await cli(EXAMPLE, ["start", "8080"], {
    env: {
      npm_lifecycle_event: "start",
      npm_lifecycle_script: "env deno run -A daemon.ts start",
    },
  });
  assert.equal(r.code, 2);
  assert.match(
    r.stderr,
    /Unexpected argument "8080"\n.*\nUnder npm, options go after "--": npm run start -- --option value\n$/,
  );
  // Not run by that script (`npm test` runs the suite, not the daemon).
  const plain = await cli(EXAMPLE, ["start", "8080"], {
    env: {
      npm_lifecycle_event: "test",
      npm_lifecycle_script: "env deno test -A tests/",
    },
  });
  assert.equal(plain.code, 2);
  assert.doesNotMatch(plain.stderr, /Under npm/);
});
