/**
 * What JSR would receive: `deno publish --dry-run` (which needs no network)
 * lists the library and its documents, and nothing of the template around
 * it: no tests, scripts, examples, CI files or scaffolded projects.
 */
import assert from "node:assert/strict";

const root = new URL("../", import.meta.url).pathname;

Deno.test("`deno publish --dry-run` lists only the library, its docs, LICENSE and deno.json", async () => {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["publish", "--dry-run", "--allow-dirty"],
    cwd: root,
    env: { NO_COLOR: "1" },
    stdin: "null",
  }).output();
  const text = new TextDecoder().decode(out.stdout) +
    new TextDecoder().decode(out.stderr);
  assert.equal(out.code, 0, text);
  const files = [...text.matchAll(/^\s+file:\/\/(\S+) \(/gm)]
    .map((m) => m[1].slice(root.length));
  const allowed =
    /^(mod\.ts|deno\.json|LICENSE|README\.md|SECURITY\.md|CHANGELOG\.md|src\/[a-z_]+\.ts|ffi\/(linux\/)?[a-z_]+\.ts|third_party\/logtape\/([a-z.-]+\.(js|d\.ts)|LICENSE|VERSION))$/;
  assert.deepEqual(files.filter((f) => !allowed.test(f)), [], text);
  for (
    const needed of [
      "mod.ts",
      "LICENSE",
      "README.md",
      "src/define.ts",
      "third_party/logtape/mod.js",
      "third_party/logtape/LICENSE",
    ]
  ) {
    assert.ok(files.includes(needed), `${needed} is published`);
  }
  assert.ok(
    !files.some((f) => f.endsWith("_test.ts")),
    "no test file is published",
  );
});
