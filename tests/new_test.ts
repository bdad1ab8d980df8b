/**
 * `deno task new`: a scaffolded project passes its own checks and tests, and
 * bad names or an existing directory are refused.
 */
import assert from "node:assert/strict";
import { sh, shq } from "./helpers.ts";

const root = new URL("../", import.meta.url).pathname;
const deno = shq(Deno.execPath());

Deno.test("a scaffolded daemon passes fmt, lint, check and its own tests", async () => {
  const parent = Deno.makeTempDirSync({ prefix: "denod-new-" });
  try {
    const dir = `${parent}/myd`;
    // As `npm run new -- myd --dir myd` typed in `parent`: npm runs the
    // script in the template and names the caller's directory in INIT_CWD.
    const made = await sh(
      `cd ${shq(root)} && ${deno} run -A scripts/new.ts myd --dir myd`,
      { env: { INIT_CWD: parent } },
    );
    assert.equal(made.code, 0, made.stderr);
    const daemon = Deno.readTextFileSync(`${dir}/daemon.ts`);
    assert.match(daemon, /name: "myd"/);
    for (
      const hook of [
        "prepare(ctx)",
        "ctx.onReload(",
        "options:",
        "env:",
        "ctx.ready()",
      ]
    ) {
      assert.ok(daemon.includes(hook), hook);
    }
    assert.match(Deno.readTextFileSync(`${dir}/README.md`), /^# myd/);
    assert.match(
      Deno.readTextFileSync(`${dir}/denod/LICENSE`),
      /the denod authors/,
      "the library's copy carries its licence",
    );
    const config = JSON.parse(Deno.readTextFileSync(`${dir}/deno.json`));
    assert.equal(config.publish, undefined, "the project publishes nothing");
    assert.ok(
      Deno.statSync(`${dir}/.ci/run`).mode! & 0o100,
      ".ci/run is executable",
    );
    const pkg = JSON.parse(Deno.readTextFileSync(`${dir}/package.json`));
    assert.equal(pkg.name, "myd");
    // npm alone reaches every command, with the Deno it installs.
    assert.equal(pkg.devDependencies.deno, Deno.version.deno);
    // Its postinstall puts the real binary in node_modules/.bin; npm 11 warns
    // on every `npm ci` about an install script not approved by name.
    assert.deepEqual(pkg.allowScripts, { deno: true });
    for (
      const script of ["start", "stop", "status", "restart", "reload", "unit"]
    ) {
      assert.equal(pkg.scripts[script], `env deno run -A daemon.ts ${script}`);
    }
    assert.equal(pkg.scripts.ctl, "env deno run -A daemon.ts");
    assert.deepEqual(config.tasks, pkg.scripts);
    assert.equal(
      Deno.readTextFileSync(`${dir}/.github/workflows/release.yml`),
      Deno.readTextFileSync(`${root}.github/workflows/release.yml`),
    );
    assert.ok(Deno.statSync(`${dir}/.git/HEAD`).isFile, "a git repository");
    assert.match(made.stdout, /Next: cd .*myd && npm ci && npm run dev/);
    // Its README's commands are npm's or the installed binary's, never a global deno.
    const readme = Deno.readTextFileSync(`${dir}/README.md`);
    const commands = [...readme.matchAll(/```sh\n([^]*?)```/g)].flatMap((m) =>
      m[1].split("\n").filter((l) => l.trim() !== "")
    );
    assert.ok(commands.length > 10, readme);
    for (const line of commands) {
      assert.match(line, /^(npm |sudo |myd )/, line);
    }
    // The template's installed dependencies stand in for the project's `npm ci`.
    Deno.symlinkSync(`${root}node_modules`, `${dir}/node_modules`);
    // One command at a time, so a failure names its command. The type
    // check is the heavy one (over 300 MB, seconds of CPU): the nested test
    // run skips it, `deno check` having checked tests/ already, and both
    // get more than the default minute before they count as hung.
    for (
      const [command, timeout] of [
        ["fmt --check", 60],
        ["lint", 60],
        ["check", 180],
        ["test -A --no-check tests/", 180],
      ] as const
    ) {
      const r = await sh(`${deno} ${command}`, { cwd: dir, timeout });
      assert.equal(r.code, 0, `deno ${command}:\n${r.stdout}${r.stderr}`);
      if (command.startsWith("test")) {
        assert.match(r.stdout + r.stderr, /1 passed \| 0 failed/);
      }
    }
  } finally {
    Deno.removeSync(parent, { recursive: true });
  }
});

Deno.test("new refuses an invalid name and an existing directory", async () => {
  const parent = Deno.makeTempDirSync({ prefix: "denod-new-" });
  try {
    const bad = await sh(
      `cd ${shq(root)} && ${deno} run -A scripts/new.ts 'my daemon' --dir ${
        shq(`${parent}/x`)
      }`,
    );
    assert.equal(bad.code, 1);
    assert.match(bad.stderr, /Invalid name "my daemon"/);
    const exists = await sh(
      `cd ${shq(root)} && ${deno} run -A scripts/new.ts myd --dir ${
        shq(parent)
      }`,
    );
    assert.equal(exists.code, 1);
    assert.match(exists.stderr, /exists already/);
    const usage = await sh(`cd ${shq(root)} && ${deno} run -A scripts/new.ts`);
    assert.equal(usage.code, 2);
    assert.match(usage.stderr, /next to this template \(\.\.\/<name>\)/);
    const stray = await sh(
      `cd ${shq(root)} && ${deno} run -A scripts/new.ts myd --nope`,
    );
    assert.equal(stray.code, 2);
    assert.match(stray.stderr, /^new: .*--nope/);
  } finally {
    Deno.removeSync(parent, { recursive: true });
  }
});
