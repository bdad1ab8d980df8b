/**
 * Running as another user: resolving `--user`/`--group` through the system
 * databases, dropping privileges in the order the reference implementations
 * use (supplementary groups, then gid, then uid), proving they cannot be
 * regained, and the hardening applied to every daemon.
 *
 * @module
 */
import { type Libc, SysError, type UserEntry } from "../ffi/mod.ts";
import { DaemonError, Exit, UsageError } from "./errors.ts";

/** Who the daemon becomes after `prepare`. */
export interface Identity {
  /** The target user; `undefined` when only `--group` was given. */
  user: UserEntry | undefined;
  /** The target group id. */
  gid: number;
}

/** Names and ids as the CLI accepts them: a name or a decimal id. */
const ID_OR_NAME = /^(?:[0-9]{1,10}|[A-Za-z_][A-Za-z0-9._-]{0,31}\$?)$/;
const MAX_ID = 0xfffffffe;

/**
 * Resolve `--user` and `--group`.
 *
 * A numeric uid without a database entry is accepted (its group is the
 * uid's number unless `--group` says otherwise); an unknown name is not.
 *
 * @returns The identity, or `undefined` when neither option was given.
 * @throws {UsageError} For an unknown or malformed user or group.
 *
 * @example
 * ```ts
 * import { libc } from "../ffi/mod.ts";
 * import { resolveIdentity } from "./privileges.ts";
 * const id = resolveIdentity(libc(), "root", undefined);
 * console.log(id?.user?.uid, id?.gid); // 0 0
 * ```
 */
export function resolveIdentity(
  libc: Libc,
  user: string | undefined,
  group: string | undefined,
): Identity | undefined {
  if (user === undefined && group === undefined) return undefined;
  let entry: UserEntry | undefined;
  if (user !== undefined) {
    entry = lookup("user", user, (v) => libc.lookupUser(v)) ?? {
      name: "",
      uid: Number(user),
      gid: Number(user),
      home: "/",
    };
  }
  let gid = entry?.gid;
  if (group !== undefined) {
    gid = lookup("group", group, (v) => libc.lookupGroup(v))?.gid ??
      Number(group);
  }
  return { user: entry, gid: gid! };
}

/** Look a user or group up; `undefined` for a numeric id without an entry. */
function lookup<T>(
  what: "user" | "group",
  value: string,
  find: (v: string) => T | null,
): T | undefined {
  const numeric = /^[0-9]+$/.test(value);
  if (!ID_OR_NAME.test(value) || (numeric && Number(value) > MAX_ID)) {
    throw new UsageError(`Invalid --${what}: ${JSON.stringify(value)}`);
  }
  const found = find(value);
  if (found !== null) return found;
  if (numeric) return undefined;
  throw new UsageError(`Unknown ${what} ${JSON.stringify(value)}`);
}

/** Refuse `--user`/`--group` to anyone but root: exit 4. */
export function requireRoot(libc: Libc, identity: Identity | undefined): void {
  if (identity !== undefined && libc.geteuid() !== 0) {
    throw new DaemonError(
      "Insufficient privilege: --user and --group need root",
      Exit.PRIVILEGE,
    );
  }
}

/**
 * Drop to `identity`: supplementary groups (never root's), gid, uid; then
 * check that neither root uid nor gid 0 can be taken back.
 *
 * @throws {DaemonError} When a step fails or privileges could be regained.
 */
export function dropPrivileges(libc: Libc, identity: Identity): void {
  const { user, gid } = identity;
  try {
    if (user !== undefined && user.name !== "") libc.initgroups(user.name, gid);
    else libc.setgroups([gid]);
    libc.setgid(gid);
    if (user !== undefined) libc.setuid(user.uid);
  } catch (err) {
    throw new DaemonError(
      `Cannot drop privileges: ${(err as Error).message}`,
      Exit.FAILURE,
      { cause: err },
    );
  }
  if (user !== undefined && user.uid !== 0) {
    mustFail("setuid(0)", () => libc.setuid(0));
    if (gid !== 0) mustFail("setgid(0)", () => libc.setgid(0));
  }
}

/** Run a call that must be refused with EPERM now that privileges are gone. */
function mustFail(what: string, call: () => void): void {
  try {
    call();
  } catch (err) {
    if (err instanceof SysError && err.code === "EPERM") return;
    throw err;
  }
  throw new DaemonError(
    `Privileges could be regained: ${what} succeeded after dropping them`,
  );
}

/** Variables `--clear-env` keeps besides those a daemon declares. */
export const ENV_ALLOW_LIST = [
  "PATH",
  "LANG",
  "LANGUAGE",
  "TZ",
  // Service-manager protocols, not secrets: readiness and socket passing.
  "NOTIFY_SOCKET",
] as const;

/**
 * The environment `--clear-env` leaves: the allow-list, `LC_*`, and the
 * names a daemon declares.
 *
 * @example
 * ```ts
 * import { clearedEnv } from "./privileges.ts";
 * console.log(clearedEnv({ PATH: "/bin", AWS_SECRET: "x", PORT: "1" }, ["PORT"]));
 * // { PATH: "/bin", PORT: "1" }
 * ```
 */
export function clearedEnv(
  env: Record<string, string>,
  declared: readonly string[],
): Record<string, string> {
  const keep = new Set<string>([...ENV_ALLOW_LIST, ...declared]);
  return Object.fromEntries(
    Object.entries(env).filter(([k]) => keep.has(k) || k.startsWith("LC_")),
  );
}
