/**
 * LogTape is loaded from `third_party/logtape`, a copy of its npm build with
 * `#util` bound to the Deno build, so that no denod process loads Deno's
 * Node layer through it (see scripts/vendor_logtape.ts).
 */
import assert from "node:assert/strict";
import { vendoredFiles } from "../scripts/vendor_logtape.ts";

const dir = new URL("../third_party/logtape/", import.meta.url).pathname;

Deno.test("`third_party/logtape` is the installed LogTape with `#util` bound to its Deno build, nothing more", async () => {
  const want = await vendoredFiles();
  const have = [...Deno.readDirSync(dir)].map((e) => e.name).sort();
  assert.deepEqual(have, [...want.keys()].sort(), "run `deno task vendor`");
  for (const [name, text] of want) {
    assert.equal(
      Deno.readTextFileSync(`${dir}${name}`),
      text,
      `${name} differs from the installed LogTape: run \`deno task vendor\``,
    );
  }
  for (const [name, text] of want) {
    if (!name.endsWith(".js")) continue;
    assert.doesNotMatch(text, /^(import|export)\b[^\n]*"(#|node:)/m, name);
    assert.doesNotMatch(text, /\bimport\(/, name);
  }
});

Deno.test("`@logtape/logtape` resolves to the vendored copy, not to node_modules", () => {
  assert.equal(
    import.meta.resolve("@logtape/logtape"),
    new URL("mod.js", `file://${dir}`).href,
  );
});
