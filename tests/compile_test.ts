/**
 * The compile path. With DENORT_BIN set, the whole path: compile, then the
 * binary's start/status/stop. Without it (as here), the command line the
 * script builds, the message it gives when the base binary cannot be had,
 * and the daemon run under exactly the permissions the binary gets.
 */
import assert from "node:assert/strict";
import { compilePlan, PERMISSIONS, sha256Line } from "../scripts/compile.ts";
import { alive, cli, EXAMPLE, sh, shq, withScratch } from "./helpers.ts";

const root = new URL("../", import.meta.url).pathname;

Deno.test("compilePlan() builds the deno compile command line for every target", () => {
  const plan = compilePlan({
    name: "myd",
    entry: "daemon.ts",
    target: "linux-x64",
    dist: "dist",
  });
  assert.deepEqual(plan.args, [
    "compile",
    ...PERMISSIONS,
    "--target",
    "x86_64-unknown-linux-gnu",
    "--output",
    "dist/myd-x86_64-unknown-linux-gnu",
    "daemon.ts",
  ]);
  for (
    const t of [
      "aarch64-unknown-linux-gnu",
      "x86_64-apple-darwin",
      "aarch64-apple-darwin",
    ]
  ) {
    assert.equal(
      compilePlan({ name: "d", entry: "e.ts", target: t, dist: "o" }).output,
      `o/d-${t}`,
    );
  }
  assert.throws(
    () =>
      compilePlan({ name: "d", entry: "e.ts", target: "windows", dist: "o" }),
    /Unknown target "windows"/,
  );
});

Deno.test("compile refuses an unknown target, option or entry in one line, without a stack trace", async () => {
  const compile = (args: string) =>
    sh(
      `cd ${shq(root)} && ${
        shq(Deno.execPath())
      } run -A scripts/compile.ts ${args}`,
    );
  for (
    const [args, code, said] of [
      ["--target windows", 2, /^compile: Unknown target "windows" \(expected/],
      ["--bogus", 2, /^compile: Unknown option '--bogus'/],
      ["--target", 2, /^compile: Option '--target <value>' argument missing/],
      ["linux-x64", 2, /^compile: Unexpected argument 'linux-x64'/],
      ["--entry nowhere.ts", 1, /^compile: Cannot load "nowhere.ts": /],
    ] as const
  ) {
    const r = await compile(args);
    assert.equal(r.code, code, `${args}: ${r.stderr}`);
    assert.match(r.stderr, said, args);
    assert.doesNotMatch(r.stderr, /^\s+at |Uncaught/m, args);
  }
});

Deno.test("sha256Line() writes a line sha256sum -c accepts", async () => {
  const dir = Deno.makeTempDirSync();
  try {
    Deno.writeTextFileSync(`${dir}/bin`, "payload");
    Deno.writeTextFileSync(`${dir}/bin.sha256`, await sha256Line(`${dir}/bin`));
    const check = await sh(`cd ${shq(dir)} && sha256sum -c bin.sha256`);
    assert.equal(check.code, 0, check.stdout + check.stderr);
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});

Deno.test("the daemon runs start/status/reload/stop, alone and supervised, under exactly the permissions compiled in", async () => {
  await withScratch(async (s) => {
    const run = (args: string[]) =>
      sh(
        [Deno.execPath(), "run", ...PERMISSIONS, EXAMPLE, ...args, ...s.paths]
          .map(shq).join(" "),
      );
    const start = await run(["start", "--port", "0"]);
    assert.equal(start.code, 0, start.stderr);
    const pid = s.track()!;
    assert.equal((await run(["status"])).code, 0);
    assert.equal((await run(["reload"])).code, 0);
    assert.equal((await run(["stop"])).code, 0);
    assert.ok(!alive(pid));

    // And under its supervisor.
    const supervised = await run([
      "start",
      "--port",
      "0",
      "--restart",
      "always",
    ]);
    assert.equal(supervised.code, 0, supervised.stderr + s.log());
    const supervisor = s.track()!;
    const daemon = Number(supervised.stdout.match(/started \(pid (\d+)/)![1]);
    s.track(daemon);
    assert.match((await run(["status"])).stdout, /supervised by pid/);
    assert.equal((await run(["reload"])).code, 0);
    assert.equal((await run(["stop"])).code, 0);
    assert.ok(!alive(supervisor) && !alive(daemon));
  });
});

const denort = Deno.env.get("DENORT_BIN");

Deno.test({
  name:
    "compile either builds the binary and its checksum, or says exactly what to provide",
  ignore: denort !== undefined,
  fn: async () => {
    const dist = Deno.makeTempDirSync();
    try {
      const r = await sh(
        `cd ${shq(root)} && ${
          shq(Deno.execPath())
        } run -A scripts/compile.ts --dist ${shq(dist)}`,
      );
      if (r.code === 0) {
        // A machine that can download denort: the whole path worked.
        assert.equal(
          (await sh(`cd ${shq(dist)} && sha256sum -c *.sha256`)).code,
          0,
        );
      } else {
        assert.equal(r.code, 1, r.stdout + r.stderr);
        assert.match(
          r.stderr,
          /could not download its base binary \(denort\) for [\w-]+/,
        );
        assert.match(
          r.stderr,
          /DENORT_BIN=\/path\/to\/denort npm run compile -- --target/,
        );
      }
      const bad = await sh(
        `cd ${shq(root)} && DENORT_BIN=/nonexistent ${
          shq(Deno.execPath())
        } run -A scripts/compile.ts`,
      );
      assert.equal(bad.code, 2);
      assert.match(
        bad.stderr,
        /DENORT_BIN="\/nonexistent" is not an executable file/,
      );
    } finally {
      Deno.removeSync(dist, { recursive: true });
    }
  },
});

Deno.test({
  name:
    "with DENORT_BIN: compile, checksum, and the binary's own start/status/stop",
  ignore: denort === undefined,
  fn: () =>
    withScratch(async (s) => {
      const dist = `${s.dir}/dist`;
      const r = await sh(
        `cd ${shq(root)} && ${
          shq(Deno.execPath())
        } run -A scripts/compile.ts --dist ${shq(dist)}`,
      );
      assert.equal(r.code, 0, r.stderr);
      const bin = `${dist}/denod-example-${Deno.build.target}`;
      assert.equal(
        (await sh(`cd ${shq(dist)} && sha256sum -c *.sha256`)).code,
        0,
      );
      const version = await sh(`${shq(bin)} version`);
      assert.match(version.stdout, /compiled\)$/m);
      const paths = s.paths.map(shq).join(" ");
      const start = await sh(`${shq(bin)} start ${paths} --port 0`);
      assert.equal(start.code, 0, start.stderr);
      const pid = s.track()!;
      assert.equal(
        (await sh(`${shq(bin)} status ${s.paths.map(shq).join(" ")}`)).code,
        0,
      );
      assert.equal(
        (await sh(`${shq(bin)} stop ${s.paths.map(shq).join(" ")}`)).code,
        0,
      );
      assert.ok(!alive(pid));
      assert.equal((await cli(EXAMPLE, ["status", ...s.paths])).code, 3);
    }),
});
