/**
 * `deno task new <name> [--dir DIR]`: a fresh daemon project from this
 * template — its own `daemon.ts` skeleton with every hook commented, a copy
 * of the library under `denod/`, a README stub, tests that pass, and CI.
 *
 * @module
 */
import { parseArgs } from "node:util";

const root = new URL("../", import.meta.url).pathname;

/** Library files copied into the new project, relative to the template root. */
const LIBRARY = ["mod.ts", "src", "ffi", "third_party", "LICENSE"];
/** Files copied as they are. */
const AS_IS = [".gitignore", "SECURITY.md", ".ci/run", "scripts/compile.ts"];

/** The skeleton payload: every hook, commented. */
export function skeleton(name: string): string {
  return `/**
 * ${name}: the daemon. Write the service in main(); everything else —
 * start/stop/status/reload/run, pidfile, logging, privileges — is denod's.
 *
 *   deno run -A daemon.ts run      # in the foreground while developing
 *   deno run -A daemon.ts start    # detached; returns once ready() was called
 *
 * @module
 */
import { defineDaemon } from "./denod/mod.ts";

export const daemon = defineDaemon({
  name: ${JSON.stringify(name)},
  version: "0.1.0",
  description: "What ${name} does, in one line",

  // Command-line options of this daemon, on top of denod's own.
  options: {
    // port: { type: "integer", description: "TCP port", default: 8080, min: 0, max: 65535 },
    // config: { type: "path", description: "Configuration file" },
  },

  // Environment variables the daemon reads: --clear-env keeps them.
  // env: ["${name.toUpperCase().replace(/[^A-Z0-9]/g, "_")}_TOKEN"],

  // Runs first, with the privileges the daemon was started with (bind a port
  // below 1024, read a root-only key). With --user, privileges are dropped
  // right after it.
  // prepare(ctx) {},

  async main(ctx) {
    // Start the service here (listeners, timers, workers).
    // SIGHUP and \`reload\` run this after the log file is reopened; it
    // reaches main's state (a configuration, a cache). Throw to report a
    // failure; the daemon keeps running either way.
    // ctx.onReload(async () => {});
    // Then say the service is ready:
    ctx.ready(); // \`start\` returns, systemd sees READY=1
    ctx.log.info("Running");
    // Run until asked to stop (SIGTERM, SIGINT, \`stop\`):
    await new Promise((resolve) => ctx.signal.addEventListener("abort", resolve));
    // Shut down cleanly here; the daemon exits 0 when main returns.
  },
});

if (import.meta.main) await daemon.cli();
`;
}

/** A lifecycle test for the new daemon. */
function lifecycleTest(): string {
  return `import assert from "node:assert/strict";

const entry = new URL("../daemon.ts", import.meta.url).pathname;

async function cli(args: string[]): Promise<{ code: number; out: string }> {
  const r = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", entry, ...args],
    stdin: "null",
  }).output();
  const dec = new TextDecoder();
  return { code: r.code, out: dec.decode(r.stdout) + dec.decode(r.stderr) };
}

Deno.test("the daemon starts, reports running, reloads and stops", async () => {
  const dir = Deno.makeTempDirSync();
  const paths = ["--pidfile", \`\${dir}/d.pid\`, "--log-file", \`\${dir}/d.log\`];
  let pid: number | undefined;
  try {
    const start = await cli(["start", ...paths]);
    assert.equal(start.code, 0, start.out);
    pid = Number(start.out.match(/pid (\\d+)/)![1]);
    assert.equal((await cli(["status", ...paths])).code, 0);
    assert.equal((await cli(["reload", ...paths])).code, 0);
    assert.equal((await cli(["stop", ...paths])).code, 0);
    assert.equal((await cli(["status", ...paths])).code, 3);
    pid = undefined;
  } finally {
    if (pid !== undefined) Deno.kill(pid, "SIGKILL");
    Deno.removeSync(dir, { recursive: true });
  }
});
`;
}

function readme(name: string): string {
  return `# ${name}

A daemon built on denod: write the service in \`daemon.ts\`.

\`\`\`sh
npm ci && npm start   # start ${name} in the background
npm ci && npm test    # run its tests
npm run stop
\`\`\`

\`deno run -A daemon.ts help\` lists every command and option;
\`npm run compile\` builds one executable in \`dist/\`. The library lives in
\`denod/\`; SECURITY.md says what running it as root involves.
`;
}

/**
 * Create the project.
 *
 * @param name The daemon's name (letters, digits, `.`, `_`, `-`).
 * @param dir Where to create it; must not exist yet.
 */
export async function scaffold(name: string, dir: string): Promise<void> {
  if (!/^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/.test(name)) {
    throw new Error(
      `Invalid name ${
        JSON.stringify(name)
      }: use letters, digits, ".", "_" and "-"`,
    );
  }
  if (await Deno.lstat(dir).catch(() => null)) {
    throw new Error(
      `${JSON.stringify(dir)} exists already: choose a new directory`,
    );
  }
  await Deno.mkdir(`${dir}/denod`, { recursive: true });
  for (const path of LIBRARY) {
    await copy(`${root}${path}`, `${dir}/denod/${path}`);
  }
  for (const path of AS_IS) await copy(`${root}${path}`, `${dir}/${path}`);
  await Deno.chmod(`${dir}/.ci/run`, 0o755);

  const deno = JSON.parse(await Deno.readTextFile(`${root}deno.json`));
  delete deno.name;
  delete deno.version;
  delete deno.exports;
  // The project is not the published library: its own licence is its own.
  delete deno.license;
  delete deno.publish;
  // The library's LogTape, loaded without the Node layer (see vendor_logtape.ts).
  deno.imports["@logtape/logtape"] = "./denod/third_party/logtape/mod.js";
  for (const tool of ["fmt", "lint"]) {
    deno[tool].exclude = deno[tool].exclude.map((p: string) =>
      p === "third_party/" ? "denod/third_party/" : p
    );
  }
  deno.tasks = {
    start: "env deno run -A daemon.ts start",
    stop: "env deno run -A daemon.ts stop",
    status: "env deno run -A daemon.ts status",
    dev: "env deno run -A daemon.ts run",
    test: "env deno test -A --parallel tests/",
    compile: "env deno run -A scripts/compile.ts",
  };
  await writeJson(`${dir}/deno.json`, deno);
  const pkg = JSON.parse(await Deno.readTextFile(`${root}package.json`));
  pkg.name = name;
  pkg.description = `${name}, a daemon built on denod`;
  pkg.scripts = deno.tasks;
  await writeJson(`${dir}/package.json`, pkg);
  const lock = JSON.parse(await Deno.readTextFile(`${root}package-lock.json`));
  lock.name = name;
  lock.packages[""].name = name;
  await writeJson(`${dir}/package-lock.json`, lock);

  await Deno.writeTextFile(`${dir}/daemon.ts`, skeleton(name));
  await Deno.mkdir(`${dir}/tests`);
  await Deno.writeTextFile(`${dir}/tests/daemon_test.ts`, lifecycleTest());
  await Deno.writeTextFile(`${dir}/README.md`, readme(name));
  // Generated text in the project's own style, so its CI's fmt check passes.
  const fmt = await new Deno.Command(Deno.execPath(), {
    args: ["fmt", "--quiet", dir],
    stdout: "null",
    stderr: "piped",
  }).output();
  if (!fmt.success) {
    throw new Error(new TextDecoder().decode(fmt.stderr).trim());
  }
}

async function writeJson(path: string, value: unknown): Promise<void> {
  await Deno.writeTextFile(path, JSON.stringify(value, null, 2) + "\n");
}

/** Copy a file or a directory tree. */
async function copy(from: string, to: string): Promise<void> {
  const info = await Deno.stat(from);
  if (info.isDirectory) {
    await Deno.mkdir(to, { recursive: true });
    for await (const e of Deno.readDir(from)) {
      await copy(`${from}/${e.name}`, `${to}/${e.name}`);
    }
  } else {
    await Deno.mkdir(to.slice(0, to.lastIndexOf("/")), { recursive: true });
    await Deno.copyFile(from, to);
  }
}

if (import.meta.main) {
  const { positionals, values } = parseArgs({
    args: Deno.args,
    options: { dir: { type: "string" } },
    allowPositionals: true,
  });
  if (positionals.length !== 1) {
    console.error("Usage: deno task new <name> [--dir DIR]");
    Deno.exit(2);
  }
  const name = positionals[0];
  const dir = values.dir ?? name;
  try {
    await scaffold(name, dir);
  } catch (err) {
    console.error(`new: ${(err as Error).message}`);
    Deno.exit(1);
  }
  console.log(`Created ${dir}/: cd ${dir} && npm ci && npm test`);
}
