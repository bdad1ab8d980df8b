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
    const made = await sh(
      `cd ${shq(root)} && ${deno} run -A scripts/new.ts myd --dir ${shq(dir)}`,
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
    assert.equal(
      JSON.parse(Deno.readTextFileSync(`${dir}/package.json`)).name,
      "myd",
    );
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
  } finally {
    Deno.removeSync(parent, { recursive: true });
  }
});
