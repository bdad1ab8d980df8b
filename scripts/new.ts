/**
 * `npm run new -- <name> [--dir DIR]` (or `deno task new …`): a fresh daemon
 * project from this template — its own `daemon.ts` skeleton with every hook
 * commented, a copy of the library under `denod/`, a README whose commands
 * need only npm, tests that pass, CI, the release workflow, and a git
 * repository. It goes next to the template (`../<name>`) unless `--dir` says
 * where (relative to the directory the command ran in).
 *
 * @module
 */
import { parseArgs } from "node:util";
import { relative, resolve } from "node:path";

const root = new URL("../", import.meta.url).pathname;

/** Library files copied into the new project, relative to the template root. */
const LIBRARY = ["mod.ts", "src", "ffi", "third_party", "LICENSE"];
/** Files copied as they are. */
const AS_IS = [
  ".gitignore",
  "SECURITY.md",
  ".ci/run",
  ".github/workflows/release.yml",
  "scripts/compile.ts",
];

/**
 * The project's npm scripts (and the same deno tasks): one per command a
 * user types daily, and `ctl` for any command with its options
 * (`npm run ctl -- status --pidfile x.pid`). `env deno` finds the npm
 * package's Deno on npm's PATH.
 */
const TASKS = {
  start: "env deno run -A daemon.ts start",
  stop: "env deno run -A daemon.ts stop",
  status: "env deno run -A daemon.ts status",
  restart: "env deno run -A daemon.ts restart",
  reload: "env deno run -A daemon.ts reload",
  unit: "env deno run -A daemon.ts unit",
  help: "env deno run -A daemon.ts help",
  ctl: "env deno run -A daemon.ts",
  dev: "env deno run -A daemon.ts run",
  test: "env deno test -A --parallel tests/",
  compile: "env deno run -A scripts/compile.ts",
};

/** The skeleton payload: every hook, commented. */
export function skeleton(name: string): string {
  return `/**
 * ${name}: the daemon. Write the service in main(); everything else —
 * start/stop/status/reload/run, pidfile, logging, privileges — is denod's.
 *
 *   npm run dev       # in the foreground while developing
 *   npm start         # detached; returns once ready() was called
 *   npm run help      # every command and option (npm run ctl -- <command>)
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

/** The project's README: commands that need only Node.js and npm. */
export function readme(name: string): string {
  return `# ${name}

A daemon built on denod: write the service in \`daemon.ts\`. \`npm run dev\` runs
it in the foreground (Ctrl-C stops it); in the background:

\`\`\`sh
npm ci                 # once: the dependencies, and Deno itself (npm package deno)
npm start              # detach; returns once ctx.ready() was called
npm run status         # is it running? (exit 0 yes, 3 no)
npm run reload         # reopen the log file, run the reload hook
npm run ctl -- status  # any command, with options after --
npm run stop           # graceful stop
npm run help           # every command and option
\`\`\`

<!-- not run by denod's tests/readme_test.ts: denod's tests/new_test.ts runs these tests; compile downloads Deno's denort -->

\`\`\`sh
npm test               # its tests
npm run compile        # dist/${name}-x86_64-unknown-linux-gnu and its .sha256
\`\`\`

A tag \`v*\` pushed to GitHub builds the executables for Linux and macOS and
attaches them to a release (\`.github/workflows/release.yml\`). To run it
under systemd on this machine, as a user of its own:

<!-- run by denod's tests/readme_test.ts without systemctl -->

\`\`\`sh
sudo install -m 0755 dist/${name}-x86_64-unknown-linux-gnu /usr/local/bin/${name}
sudo useradd --system --no-create-home --shell /usr/sbin/nologin ${name}
${name} unit --user ${name} | sudo tee /etc/systemd/system/${name}.service
sudo systemctl daemon-reload && sudo systemctl enable --now ${name}
\`\`\`

The library lives in \`denod/\`; SECURITY.md says what running it as root
involves.
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
  deno.tasks = TASKS;
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

/**
 * Make the project a git repository (without a commit: that needs the
 * user's name). Returns what to tell the user when git is missing or fails.
 */
async function gitInit(dir: string): Promise<string | undefined> {
  try {
    const r = await new Deno.Command("git", {
      args: ["init", "--quiet", dir],
      stdout: "null",
      stderr: "piped",
    }).output();
    return r.success
      ? undefined
      : `git init failed (${new TextDecoder().decode(r.stderr).trim()})`;
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) {
      return "git is not installed: no repository was made (run git init there later)";
    }
    throw err;
  }
}

const USAGE =
  `Usage: npm run new -- <name> [--dir DIR]   (or deno task new <name> [--dir DIR])

Creates the daemon project <name> next to this template (../<name>), or in DIR
(relative to the directory you ran the command in), with git init.`;

if (import.meta.main) {
  let parsed;
  try {
    parsed = parseArgs({
      args: Deno.args,
      options: {
        dir: { type: "string" },
        help: { type: "boolean", short: "h" },
      },
      allowPositionals: true,
    });
  } catch (err) {
    console.error(`new: ${(err as Error).message}\n${USAGE}`);
    Deno.exit(2);
  }
  const { positionals, values } = parsed;
  if (values.help) {
    console.log(USAGE);
    Deno.exit(0);
  }
  if (positionals.length !== 1) {
    console.error(USAGE);
    Deno.exit(2);
  }
  const name = positionals[0];
  // npm and deno task both run scripts in the template's directory and name
  // the caller's in INIT_CWD: --dir means what it says from there.
  const cwd = Deno.env.get("INIT_CWD") ?? Deno.cwd();
  const dir = values.dir === undefined
    ? resolve(root, "..", name)
    : resolve(cwd, values.dir);
  try {
    await scaffold(name, dir);
  } catch (err) {
    console.error(`new: ${(err as Error).message}`);
    Deno.exit(1);
  }
  const git = await gitInit(dir);
  if (git !== undefined) console.error(`new: ${git}`);
  const there = relative(cwd, dir) || ".";
  console.log(
    `Created ${dir}${
      git === undefined ? " (a git repository)" : ""
    }\nNext: cd ${there} && npm ci && npm run dev`,
  );
}
