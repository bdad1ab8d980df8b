/**
 * Whether a pid is believed, decided from the kernel's view of it: pinned
 * in-process with a fake `Libc` that plays every view.
 */
import assert from "node:assert/strict";
import type { FileStat, Libc, ProcessView } from "../ffi/mod.ts";
import { distrust, pinChild } from "../src/pin.ts";
import type { LaunchRecord } from "../src/state.ts";

const FILE: FileStat = {
  type: "file",
  dev: "254:0",
  devNumber: 65024n,
  ino: 42n,
  mode: 0o644,
  uid: 0,
  gid: 0,
  nlink: 1,
  rdev: "0:0",
  size: 5,
};
const LAUNCH: LaunchRecord = {
  exe: "/usr/local/bin/myd",
  uids: [0, 998],
  supervised: false,
  foreground: false,
  program: ["/usr/local/bin/myd"],
  options: {},
  startedAt: 0,
};

/** A `Libc` that knows one process, as `view` says, seen by `euid`. */
function kernel(view: ProcessView | null, euid = 0): Libc {
  return {
    geteuid: () => euid,
    processView: (_pid: number, lockOn?: { dev: string; ino: bigint }) => {
      if (view === null || lockOn === undefined) return view;
      assert.equal(lockOn.ino, FILE.ino, "asks about the pidfile itself");
      return view;
    },
  } as Partial<Libc> as Libc;
}

const DAEMON: ProcessView = {
  exe: "/usr/local/bin/myd",
  uid: 998,
  euid: 998,
  ppid: 1,
  exiting: false,
  holdsLock: true,
};

Deno.test("distrust() believes the lock holder running this program as a recorded uid", () => {
  assert.equal(distrust(kernel(DAEMON), 7, FILE, LAUNCH), null);
  // Still root, during prepare.
  assert.equal(
    distrust(kernel({ ...DAEMON, uid: 0, euid: 0 }), 7, FILE, LAUNCH),
    null,
  );
  // The program running the command is this program too.
  assert.equal(
    distrust(kernel({ ...DAEMON, exe: Deno.execPath() }), 7, FILE, LAUNCH),
    null,
  );
});

Deno.test("distrust() names why a pid is not believed", () => {
  const cases: Array<[Partial<ProcessView> | null, RegExp]> = [
    [null, /^has exited$/],
    [{ holdsLock: false }, /does not hold the pidfile's lock/],
    [{ holdsLock: null }, /does not hold the pidfile's lock/],
    [{ exe: "/usr/bin/sleep" }, /runs "\/usr\/bin\/sleep", not this program/],
    // Terminal escapes never reach the message.
    [{ exe: "/x\u001b[2J" }, /^runs "\/x", not this program$/],
    [{ exe: null }, /no executable root can see/],
    [{ uid: 1000, euid: 1000 }, /runs as uid 1000, not as uid 0 or uid 998/],
    [{ euid: 0 }, null as unknown as RegExp],
    [{ uid: 1000 }, /runs as uid 998/],
  ];
  for (const [change, why] of cases) {
    const view = change === null ? null : { ...DAEMON, ...change };
    const got = distrust(kernel(view), 7, FILE, LAUNCH);
    if (why === null) assert.equal(got, null, JSON.stringify(change));
    else assert.match(got ?? "believed", why, JSON.stringify(change));
  }
});

Deno.test("distrust() without a launch record expects the pidfile's owner; a non-root caller that cannot look inside relies on the lock and the kernel", () => {
  const here = { ...DAEMON, exe: Deno.execPath() };
  assert.match(
    distrust(kernel(here), 7, FILE, null)!,
    /runs as uid 998, not as uid 0$/,
  );
  const unseen = { ...DAEMON, holdsLock: null, exe: null };
  assert.equal(distrust(kernel(unseen, 998), 7, FILE, LAUNCH), null);
  assert.match(
    distrust(kernel(unseen, 0), 7, FILE, LAUNCH)!,
    /does not hold the pidfile's lock/,
  );
});

Deno.test("pinChild() pins a child of the given parent, live or dead, whatever it holds; the pidfd of any other process is closed", () => {
  const closed: number[] = [];
  const opened = (view: ProcessView | null): Libc =>
    ({
      ...kernel(view),
      pidfdOpen: () => 99,
      close: (fd: number) => void closed.push(fd),
    }) as Partial<Libc> as Libc;
  const child = { ...DAEMON, ppid: 500 };
  const ours: Array<[ProcessView, string]> = [
    [child, "running"],
    [
      { ...child, holdsLock: false },
      "without the lock (dropped by the payload)",
    ],
    [{ ...child, holdsLock: false, exiting: true }, "dead, not yet reaped"],
  ];
  for (const [view, what] of ours) {
    assert.deepEqual(
      pinChild(opened(view), 500, 7),
      { pid: 7, pidfd: 99 },
      what,
    );
  }
  assert.deepEqual(closed, []);
  const others: Array<[ProcessView | null, string]> = [
    // A fork of the old daemon on the shared lock, or a process that took
    // the pid of a new generation that died and was reaped by another.
    [{ ...child, ppid: 1 }, "another parent's"],
    [null, "gone"],
  ];
  for (const [view, what] of others) {
    closed.length = 0;
    assert.equal(pinChild(opened(view), 500, 7), null, what);
    assert.deepEqual(closed, [99], what);
  }
  const gone = {
    ...opened(child),
    pidfdOpen: () => {
      throw new Error("ESRCH");
    },
  } as Libc;
  assert.equal(pinChild(gone, 500, 7), null);
});
