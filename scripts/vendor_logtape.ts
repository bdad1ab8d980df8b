/**
 * `deno task vendor` (also npm's `postinstall`): copies LogTape's ESM build
 * from `node_modules/@logtape/logtape/dist` to `third_party/logtape/`, its
 * `#util` import bound to the Deno build (`util.deno.js`).
 *
 * Why a copy: through npm, LogTape's `#util` import resolves with the `node`
 * condition (its package.json lists `node` before `deno`), and any file under
 * node_modules is npm code to Deno whatever the specifier, so every process
 * that logs loaded `node:util` and Deno's Node layer (~38 MB RSS against
 * ~32 MB for the same files as plain ESM). JSR would give the Deno build, but
 * is not reachable here. `deno.json` maps `@logtape/logtape` to the copy, so
 * the library, the payload and the tests share one LogTape.
 *
 * @module
 */

const root = new URL("../", import.meta.url).pathname;
const FROM = `${root}node_modules/@logtape/logtape`;
const TO = `${root}third_party/logtape`;

/**
 * The files reachable from `entry` through relative imports (in a
 * declaration file, `./x.js` names `./x.d.ts`).
 */
async function reachable(dir: string, entry: string): Promise<Set<string>> {
  const declarations = entry.endsWith(".d.ts");
  const seen = new Set<string>();
  const todo = [entry];
  while (todo.length > 0) {
    const name = todo.pop()!;
    if (seen.has(name)) continue;
    seen.add(name);
    const text = await Deno.readTextFile(`${dir}/${name}`);
    for (const m of text.matchAll(/(?:from|import)\s*"\.\/([^"]+)"/g)) {
      todo.push(declarations ? m[1].replace(/\.js$/, ".d.ts") : m[1]);
    }
  }
  return seen;
}

/**
 * The vendored files, by name, as they are written.
 *
 * @param from LogTape's npm package directory.
 */
export async function vendoredFiles(
  from = FROM,
): Promise<Map<string, string>> {
  const pkg = JSON.parse(await Deno.readTextFile(`${from}/package.json`));
  const util: string = pkg.imports["#util"].deno;
  const dist = `${from}/dist`;
  const files = new Map<string, string>();
  const js = await reachable(dist, "mod.js");
  js.add(util.replace("./dist/", ""));
  for (const name of js) {
    for (const more of await reachable(dist, name)) js.add(more);
  }
  for (const name of [...js].sort()) {
    let text = await Deno.readTextFile(`${dist}/${name}`);
    text = text.replaceAll(`"#util"`, `"./${util.replace("./dist/", "")}"`)
      .replace(/\n\/\/# sourceMappingURL=.*\n?$/, "\n");
    if (name === "mod.js") text = `// @ts-self-types="./mod.d.ts"\n${text}`;
    files.set(name, text);
  }
  for (const name of [...await reachable(dist, "mod.d.ts")].sort()) {
    const text = await Deno.readTextFile(`${dist}/${name}`);
    // Deno, unlike tsc, does not look for `x.d.ts` beside an imported `x.js`.
    files.set(
      name,
      text.replace(/((?:from|import)\s*"\.\/[^"]+)\.js"/g, '$1.d.ts"')
        .replace(/\n\/\/# sourceMappingURL=.*\n?$/, "\n"),
    );
  }
  files.set("LICENSE", await Deno.readTextFile(`${from}/LICENSE`));
  files.set(
    "VERSION",
    `@logtape/logtape ${pkg.version} from npm (dist/), #util → ${util}\n`,
  );
  return files;
}

if (import.meta.main) {
  const files = await vendoredFiles();
  await Deno.remove(TO, { recursive: true }).catch(() => {});
  await Deno.mkdir(TO, { recursive: true });
  for (const [name, text] of files) {
    await Deno.writeTextFile(`${TO}/${name}`, text);
  }
  console.log(`Vendored ${files.size} files to third_party/logtape/`);
}
