/**
 * `deno task compile [--target TRIPLE] [--entry FILE]`: one executable per
 * target in `dist/<name>-<target>`, with a SHA-256 checksum beside it.
 *
 * `deno compile` builds on a `denort` base binary that it downloads. Where
 * that is impossible, point `DENORT_BIN` at a `denort` for the same Deno
 * version and target.
 *
 * @module
 */
import { parseArgs } from "node:util";

/**
 * The permissions baked into the binary, in one place. `--allow-ffi` alone
 * already amounts to every permission (FFI bypasses the sandbox; see
 * SECURITY.md): the others are listed so that the binary does not prompt,
 * and a test runs the daemon under exactly these flags.
 */
export const PERMISSIONS = [
  "--allow-ffi", // posix_spawn, flock, setuid…: libc through FFI
  "--allow-read", // /proc, the pidfile, configuration
  "--allow-write", // the pidfile, the log file, the state directory
  "--allow-env", // Deno.env, NOTIFY_SOCKET, the logger
  "--allow-net", // the payload's listeners
  "--allow-sys", // hostname and OS facts the payload may ask for
  // Not a permission: SO_REUSEPORT, which ctx.serve needs so that `upgrade`
  // can hand the port over (deno.json says so too; a binary must not
  // depend on the config it was built next to).
  "--unstable-net",
] as const;

/** The targets `deno compile` builds for, with the short names the script also accepts. */
export const TARGETS: Record<string, string> = {
  "x86_64-unknown-linux-gnu": "x86_64-unknown-linux-gnu",
  "aarch64-unknown-linux-gnu": "aarch64-unknown-linux-gnu",
  "x86_64-apple-darwin": "x86_64-apple-darwin",
  "aarch64-apple-darwin": "aarch64-apple-darwin",
  "linux-x64": "x86_64-unknown-linux-gnu",
  "linux-arm64": "aarch64-unknown-linux-gnu",
  "macos-x64": "x86_64-apple-darwin",
  "macos-arm64": "aarch64-apple-darwin",
};

/** What one compile produces. */
export interface CompilePlan {
  /** The full `deno compile` argument list. */
  args: string[];
  /** The executable's path. */
  output: string;
  /** The target triple. */
  target: string;
}

/**
 * The `deno compile` command line for a daemon.
 *
 * @example
 * ```ts
 * import { compilePlan } from "./compile.ts";
 * const plan = compilePlan({ name: "myd", entry: "daemon.ts", target: "linux-arm64", dist: "dist" });
 * console.log(plan.output); // dist/myd-aarch64-unknown-linux-gnu
 * ```
 */
export function compilePlan(
  opts: { name: string; entry: string; target: string; dist: string },
): CompilePlan {
  const target = TARGETS[opts.target];
  if (target === undefined) {
    throw new Error(
      `Unknown target ${JSON.stringify(opts.target)} (expected one of ${
        Object.keys(TARGETS).join(", ")
      })`,
    );
  }
  const output = `${opts.dist}/${opts.name}-${target}`;
  return {
    target,
    output,
    args: [
      "compile",
      ...PERMISSIONS,
      "--target",
      target,
      "--output",
      output,
      opts.entry,
    ],
  };
}

/** The daemon's name, from the `daemon` its entry module exports. */
async function daemonName(entry: string): Promise<string> {
  const url = new URL(entry, `file://${Deno.cwd()}/`).href;
  const mod = await import(url).catch((err) => {
    throw new Error(
      `Cannot load ${JSON.stringify(entry)}: ${
        (err as Error).message.split("\n")[0]
      }`,
      { cause: err },
    );
  });
  const name = mod.daemon?.definition?.name;
  if (typeof name !== "string") {
    throw new Error(
      `${entry} does not export \`daemon\` made with defineDaemon()`,
    );
  }
  return name;
}

/** A `sha256sum`-style line for a file. */
export async function sha256Line(path: string): Promise<string> {
  const digest = await crypto.subtle.digest(
    "SHA-256",
    await Deno.readFile(path),
  );
  const hex = [...new Uint8Array(digest)].map((b) =>
    b.toString(16).padStart(2, "0")
  ).join("");
  return `${hex}  ${path.slice(path.lastIndexOf("/") + 1)}\n`;
}

/** Why the base binary could not be had, worded as what to provide. */
function denortAdvice(target: string): string {
  const version = Deno.version.deno;
  return [
    `deno compile could not download its base binary (denort) for ${target}.`,
    `Provide it: take denort-${target}.zip of Deno v${version} from Deno's releases`,
    `on a machine that can, unzip it here, and run again with`,
    `DENORT_BIN=/path/to/denort npm run compile -- --target ${target}`,
  ].join("\n");
}

const USAGE =
  "Usage: npm run compile -- [--target TRIPLE] [--entry FILE] [--dist DIR]";

/** Say why in one line (a user's mistake: no stack trace); the exit code. */
function refuse(err: unknown, code: number, usage = false): number {
  console.error(
    `compile: ${(err as Error).message}${usage ? `\n${USAGE}` : ""}`,
  );
  return code;
}

async function main(): Promise<number> {
  let values;
  try {
    ({ values } = parseArgs({
      args: Deno.args,
      options: {
        target: { type: "string", default: Deno.build.target },
        entry: { type: "string", default: "daemon.ts" },
        dist: { type: "string", default: "dist" },
      },
    }));
  } catch (err) {
    return refuse(err, 2, true);
  }
  const denort = Deno.env.get("DENORT_BIN");
  if (denort !== undefined) {
    const info = await Deno.stat(denort).catch(() => null);
    if (!info?.isFile || (info.mode! & 0o111) === 0) {
      console.error(
        `compile: DENORT_BIN=${
          JSON.stringify(denort)
        } is not an executable file`,
      );
      return 2;
    }
  }
  let name;
  try {
    name = await daemonName(values.entry);
  } catch (err) {
    return refuse(err, 1);
  }
  let plan;
  try {
    plan = compilePlan({
      name,
      entry: values.entry,
      target: values.target,
      dist: values.dist,
    });
  } catch (err) {
    return refuse(err, 2);
  }
  await Deno.mkdir(values.dist, { recursive: true });
  const out = await new Deno.Command(Deno.execPath(), {
    args: plan.args,
    stderr: "piped",
  })
    .output();
  const err = new TextDecoder().decode(out.stderr);
  if (!out.success) {
    if (
      denort === undefined &&
      /base binary|denort|error sending request/i.test(err)
    ) {
      console.error(denortAdvice(plan.target));
    } else {
      console.error(err.trimEnd());
    }
    return 1;
  }
  const sum = `${plan.output}.sha256`;
  await Deno.writeTextFile(sum, await sha256Line(plan.output));
  console.log(`${plan.output}\n${sum}`);
  return 0;
}

if (import.meta.main) Deno.exit(await main());
