/**
 * The walk root's commands take to a file: which directories and files are
 * trusted, judged in-process on directories made for each case.
 */
import assert from "node:assert/strict";
import { asRoot } from "./helpers.ts";
import { libc } from "../ffi/mod.ts";
import { DaemonError } from "../src/errors.ts";
import {
  checkFile,
  closeParent,
  openChecked,
  openParent,
  type WalkPolicy,
} from "../src/safe_open.ts";

const c = libc();
const pidfile: WalkPolicy = { what: "pidfile", owners: [0], trustDirs: true };

/** Make `rel` under `base` with a mode and owner; returns its path. */
function dir(base: string, rel: string, mode: number, uid = 0, gid = 0) {
  const path = `${base}/${rel}`;
  Deno.mkdirSync(path);
  Deno.chownSync(path, uid, gid);
  Deno.chmodSync(path, mode);
  return path;
}

/** The refusal `openParent` gives for `path`, or `null` when trusted. */
function verdict(path: string, policy = pidfile): string | null {
  try {
    closeParent(c, openParent(c, path, policy));
    return null;
  } catch (err) {
    assert.ok(err instanceof DaemonError, String(err));
    assert.equal(err.exitCode, 2, err.message);
    return err.message;
  }
}

Deno.test({
  ...asRoot(
    "openParent() trusts a path only where nobody but its owners can change what it names",
  ),
  fn() {
    const base = Deno.makeTempDirSync();
    try {
      const ok = dir(base, "ok", 0o755);
      const sticky = dir(base, "sticky", 0o1777);
      const theirsInSticky = dir(sticky, "theirs", 0o755, 65534, 65534);
      const oursInSticky = dir(sticky, "ours", 0o755);
      const group = dir(base, "group", 0o2775, 0, 65534);
      const open = dir(base, "open", 0o777);
      const foreign = dir(base, "foreign", 0o755, 65534, 65534);
      Deno.symlinkSync(ok, `${base}/link`);

      assert.equal(verdict(`${ok}/x.pid`), null);
      assert.equal(verdict(`${sticky}/x.pid`), null, "sticky: file judged");
      assert.equal(verdict(`${oursInSticky}/x.pid`), null);
      assert.match(verdict(`${theirsInSticky}/x.pid`)!, /belongs to uid 65534/);
      assert.match(verdict(`${group}/x.pid`)!, /writable by group 65534/);
      assert.match(verdict(`${open}/x.pid`)!, /writable by every user/);
      assert.match(verdict(`${foreign}/x.pid`)!, /belongs to uid 65534/);
      assert.match(verdict(`${base}/link/x.pid`)!, /is a symbolic link/);
      assert.match(verdict("relative/x.pid")!, /not an absolute path/);
      assert.match(verdict(`${ok}/${"n".repeat(256)}`)!, /too long/);
      // A non-root caller also trusts what it owns itself.
      assert.equal(
        verdict(`${foreign}/x.pid`, { ...pidfile, owners: [0, 65534] }),
        null,
      );
      // Without directory trust (log files), only links are refused.
      const log = { what: "log file", owners: [0], trustDirs: false };
      assert.equal(verdict(`${open}/x.log`, log), null);
      assert.match(verdict(`${base}/link/x.log`, log)!, /symbolic link/);
    } finally {
      Deno.removeSync(base, { recursive: true });
    }
  },
});

Deno.test({
  ...asRoot(
    "openChecked() creates a file with exactly its mode whatever the umask, and checkFile() refuses what root must not write",
  ),
  fn() {
    const base = Deno.makeTempDirSync();
    const old = Deno.umask(0o077);
    try {
      const f = openChecked(c, `${base}/new.log`, {
        what: "log file",
        owners: [0],
        trustDirs: false,
      }, { write: true, append: true, create: true, mode: 0o640 });
      assert.ok(f.created);
      c.close(f.fd);
      assert.equal(Deno.statSync(`${base}/new.log`).mode! & 0o777, 0o640);

      const st = c.stat(`${base}/new.log`);
      const policy = { what: "pidfile", owners: [0] };
      assert.equal(checkFile(st, "p", policy), "file");
      assert.throws(
        () => checkFile({ ...st, nlink: 2 }, "p", policy),
        /2 hard links/,
      );
      assert.throws(() => checkFile({ ...st, uid: 7 }, "p", policy), /uid 7/);
      assert.throws(
        () =>
          checkFile({ ...st, mode: 0o666 }, "p", policy, {
            privateWrite: true,
          }),
        /writable by others/,
      );
      assert.throws(
        () => checkFile({ ...st, type: "fifo" }, "p", policy),
        /it is a fifo/,
      );
      const dev = { ...st, type: "char-device" as const, rdev: "1:3" };
      assert.equal(checkFile(dev, "p", policy, { device: "1:3" }), "device");
      assert.throws(
        () =>
          checkFile({ ...dev, rdev: "1:5" }, "p", policy, { device: "1:3" }),
        /char device/,
      );
    } finally {
      Deno.umask(old);
      Deno.removeSync(base, { recursive: true });
    }
  },
});
