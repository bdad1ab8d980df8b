/**
 * Deno's own caches under `deno run --user`.
 *
 * At boot, `deno run` opens its cache databases in `DENO_DIR` (V8 code
 * cache, module and CommonJS analysis) read-write, maps their `-shm` files
 * shared and writable, and keeps them for its whole life. A daemon stage
 * boots as root, so after dropping privileges it would hold root's caches
 * open for writing: a compromised payload could put bytecode into the code
 * cache that root's next `deno run` executes. No flag or variable turns
 * these databases off (`--no-code-cache` covers one of three, and would
 * change the argv a re-exec must keep).
 *
 * So a daemon stage that may drop privileges boots with a `DENO_DIR` of its
 * own: a fresh directory only root can enter, in a directory only root can
 * write, where the caches that only hold modules (`remote`, `npm`, `gen`)
 * are symlinks to the real ones, and everything else Deno creates is
 * thrown away. Just before the drop, every descriptor the daemon holds into
 * it is handed to the target user and the directory is removed: the daemon
 * keeps only files of its own user that nobody else can reach, and can no
 * longer reach the real caches through it. The process that waits for the
 * daemon (`start`, `upgrade`, or the supervisor) makes the directory and
 * removes it again once the daemon is ready or has ended: a daemon killed
 * before its drop cannot remove it. The payload sees `DENO_DIR` as its
 * caller had it. A compiled binary has none of these caches.
 *
 * @module
 */
import type { Libc } from "../ffi/mod.ts";
import { UNCHANGED_ID } from "./logfile.ts";
import type { Identity } from "./privileges.ts";

/** Where private directories are made: only root may write there, so none can be made again by anyone else once removed. */
const BASE = "/run";
/** Their names' prefix. */
const PREFIX = "denod-deno-";
/** What of the real `DENO_DIR` a daemon reads: caches of modules, whose files Deno opens and closes again. */
const SHARED = ["remote", "npm", "gen"];

/** What a daemon stage is told about its private `DENO_DIR`. */
export interface PrivateDenoDir {
  /** The directory its Deno boots with. */
  dir: string;
  /** `DENO_DIR` as the caller had it; `null` when it was unset. */
  caller: string | null;
}

/**
 * The `DENO_DIR` Deno uses with `env` in this working directory, as Deno
 * resolves it on Linux: `$DENO_DIR`, else `$XDG_CACHE_HOME/deno`, else
 * `$HOME/.cache/deno` (the home from the user database when `HOME` is
 * unset); empty variables count as unset, relative paths are relative to
 * the working directory.
 *
 * @returns The directory, or `null` when Deno would find none.
 *
 * @example
 * ```ts
 * import { libc } from "../ffi/mod.ts";
 * import { denoDirOf } from "./denodir.ts";
 * console.log(denoDirOf(libc(), { HOME: "/home/ann" })); // /home/ann/.cache/deno
 * ```
 */
export function denoDirOf(
  libc: Libc,
  env: Record<string, string | undefined>,
): string | null {
  const set = (name: string) => env[name] || undefined;
  let dir = set("DENO_DIR");
  if (dir === undefined) {
    const home = set("HOME") ?? libc.lookupUser(String(libc.geteuid()))?.home;
    const cache = set("XDG_CACHE_HOME") ?? (home && `${home}/.cache`);
    if (!cache) return null;
    dir = `${cache}/deno`;
  }
  return dir.startsWith("/") ? dir : `${Deno.cwd()}/${dir}`;
}

/**
 * Make the private `DENO_DIR` of a daemon that will drop privileges, about
 * to be spawned with `env` (this process's own when `undefined`), when it
 * needs one: under `deno run`, as root. The daemon boots with `DENO_DIR`
 * set to it ({@linkcode spawnEnv}) and removes it before it drops
 * privileges; whoever made it removes it again once the daemon ended
 * ({@linkcode removePrivateDenoDir}), for a daemon killed before that.
 *
 * @returns The directory, or `null` when the daemon needs none.
 * @throws {Error} When none can be made: the daemon must then not start.
 */
export function makePrivateDenoDir(
  libc: Libc,
  env: Record<string, string> | undefined,
): PrivateDenoDir | null {
  if (Deno.build.standalone || libc.geteuid() !== 0) return null;
  const base = libc.stat(BASE);
  if (
    base.type !== "directory" || base.uid !== 0 || (base.mode & 0o022) !== 0
  ) {
    throw new Error(
      `Cannot keep Deno's caches from the daemon: ${
        JSON.stringify(BASE)
      } is not a directory only root can write; use the compiled binary for --user`,
    );
  }
  const callerEnv = env ?? Deno.env.toObject();
  const real = denoDirOf(libc, callerEnv);
  const dir = Deno.makeTempDirSync({ dir: BASE, prefix: PREFIX });
  try {
    for (const name of SHARED) {
      if (real !== null && exists(`${real}/${name}`)) {
        Deno.symlinkSync(`${real}/${name}`, `${dir}/${name}`);
      }
    }
  } catch (err) {
    removePrivateDenoDir(dir);
    throw err;
  }
  return { dir, caller: callerEnv.DENO_DIR ?? null };
}

/**
 * The environment to spawn a daemon with: `env` (this process's own when
 * `undefined`), with `DENO_DIR` set to its private directory if it has one.
 */
export function spawnEnv(
  denoDir: PrivateDenoDir | null,
  env: Record<string, string> | undefined,
): Record<string, string> | undefined {
  return denoDir === null
    ? env
    : { ...(env ?? Deno.env.toObject()), DENO_DIR: denoDir.dir };
}

/**
 * In the daemon, first thing: give the payload `DENO_DIR` as its caller had
 * it, and remove the private directory whenever the daemon exits before
 * {@linkcode leavePrivateDenoDir} did.
 */
export function enterPrivateDenoDir(denoDir: PrivateDenoDir): void {
  if (denoDir.caller === null) Deno.env.delete("DENO_DIR");
  else Deno.env.set("DENO_DIR", denoDir.caller);
  globalThis.addEventListener(
    "unload",
    () => removePrivateDenoDir(denoDir.dir),
  );
}

/**
 * Just before dropping privileges: hand every descriptor into the private
 * directory (the cache databases, their write-ahead logs and shared-memory
 * files, mapped too) to the user and group the daemon becomes, then remove
 * the directory, so that they are files of that user's that no path leads
 * to any more.
 */
export function leavePrivateDenoDir(
  libc: Libc,
  denoDir: PrivateDenoDir | undefined,
  identity: Identity | undefined,
): void {
  if (denoDir === undefined) return;
  if (identity !== undefined) {
    for (const fd of libc.openFds()) {
      const target = fdTarget(fd);
      if (target === denoDir.dir || target?.startsWith(`${denoDir.dir}/`)) {
        libc.fchown(fd, identity.user?.uid ?? UNCHANGED_ID, identity.gid);
      }
    }
  }
  removePrivateDenoDir(denoDir.dir);
}

/** What descriptor `fd` of this process refers to, or `null` once closed. */
function fdTarget(fd: number): string | null {
  try {
    return Deno.readLinkSync(`/proc/self/fd/${fd}`);
  } catch {
    return null;
  }
}

function exists(path: string): boolean {
  try {
    Deno.statSync(path);
    return true;
  } catch {
    return false;
  }
}

/** Remove a private directory, if it is still there and this process may. */
export function removePrivateDenoDir(dir: string): void {
  try {
    Deno.removeSync(dir, { recursive: true });
  } catch {
    // Gone already; after the drop, this process may not remove it anyway.
  }
}
