/**
 * Users, groups and privileges: the user and group databases, changing
 * ids, and the limits set before dropping privileges.
 *
 * @module
 */
import type { GroupEntry, Libc, UserEntry } from "../types.ts";
import { type Core, cstr } from "./_core.ts";

const PR_SET_NO_NEW_PRIVS = 38;
const RLIMIT_CORE = 4;
/** Ids above this are not valid uids or gids ((uid_t)-1 means "unchanged"). */
const MAX_ID = 0xfffffffe;

/** The functions of {@linkcode Libc} about users, groups and privileges. */
export type Identities = Pick<
  Libc,
  | "geteuid"
  | "lookupUser"
  | "lookupGroup"
  | "setgroups"
  | "initgroups"
  | "setgid"
  | "setuid"
  | "setNoNewPrivs"
  | "disableCoreDumps"
>;

/**
 * The Linux identity functions.
 *
 * @param c The shared core.
 * @returns Them, for {@linkcode Libc}.
 */
export function identities(c: Core): Identities {
  return {
    geteuid: () => c.symbol("geteuid")(),
    lookupUser: (nameOrUid) => lookupUser(c, nameOrUid),
    lookupGroup: (nameOrGid) => lookupGroup(c, nameOrGid),
    setgroups(gids) {
      const list = new Uint32Array(gids);
      c.check(
        "setgroups",
        "",
        () => c.symbol("setgroups")(BigInt(list.length), list),
      );
    },
    initgroups(user, gid) {
      const u = cstr(user);
      c.check("initgroups", user, () => c.symbol("initgroups")(u, gid));
    },
    setgid(gid) {
      c.check("setgid", String(gid), () => c.symbol("setgid")(gid));
    },
    setuid(uid) {
      c.check("setuid", String(uid), () => c.symbol("setuid")(uid));
    },
    setNoNewPrivs() {
      c.check(
        "prctl",
        "PR_SET_NO_NEW_PRIVS",
        () => c.symbol("prctl")(PR_SET_NO_NEW_PRIVS, 1n, 0n, 0n, 0n),
      );
    },
    disableCoreDumps() {
      const rlimit = new BigUint64Array([0n, 0n]);
      c.check(
        "setrlimit",
        "RLIMIT_CORE",
        () => c.symbol("setrlimit")(RLIMIT_CORE, rlimit),
      );
    },
  };
}

/** {@linkcode Libc.lookupUser} */
function lookupUser(c: Core, nameOrUid: string): UserEntry | null {
  const p = byNameOrId(nameOrUid, c.symbol("getpwuid"), c.symbol("getpwnam"));
  if (p === null) return null;
  // struct passwd: pw_name, pw_passwd, pw_uid, pw_gid, pw_gecos, pw_dir, pw_shell
  const v = new Deno.UnsafePointerView(p);
  return {
    name: Deno.UnsafePointerView.getCString(v.getPointer(0)!),
    uid: v.getUint32(16),
    gid: v.getUint32(20),
    home: Deno.UnsafePointerView.getCString(v.getPointer(32)!),
  };
}

/** {@linkcode Libc.lookupGroup} */
function lookupGroup(c: Core, nameOrGid: string): GroupEntry | null {
  const p = byNameOrId(nameOrGid, c.symbol("getgrgid"), c.symbol("getgrnam"));
  if (p === null) return null;
  // struct group: gr_name, gr_passwd, gr_gid, gr_mem
  const v = new Deno.UnsafePointerView(p);
  return {
    name: Deno.UnsafePointerView.getCString(v.getPointer(0)!),
    gid: v.getUint32(16),
  };
}

/** Call the by-id lookup for a decimal id, the by-name one otherwise. */
function byNameOrId(
  value: string,
  byId: (id: number) => Deno.PointerValue,
  byName: (name: Uint8Array<ArrayBuffer>) => Deno.PointerValue,
): Deno.PointerValue {
  if (!/^[0-9]{1,10}$/.test(value)) return byName(cstr(value));
  return Number(value) <= MAX_ID ? byId(Number(value)) : null;
}
