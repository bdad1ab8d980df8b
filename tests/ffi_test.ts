import assert from "node:assert/strict";
import { libc, SysError } from "../ffi/mod.ts";
import { waitFor } from "./helpers.ts";

const c = libc();

Deno.test("libc().open() reports errno as a SysError code, not as text", () => {
  assert.throws(() => c.open("/nonexistent/x", {}), (err: unknown) => {
    assert.ok(err instanceof SysError);
    assert.equal(err.code, "ENOENT");
    assert.equal(err.syscall, "open");
    assert.match(
      err.message,
      /^open "\/nonexistent\/x": No such file or directory$/,
    );
    return true;
  });
});

Deno.test("libc().spawn() places descriptors, starts a session and closes everything else, even below the highest placed", async () => {
  const dir = Deno.makeTempDirSync();
  // A descriptor of ours without FD_CLOEXEC, below the highest one placed.
  const leak = c.open(`${dir}/leak`, { write: true, create: true });
  c.setCloexec(leak, false);
  const [r, w] = c.pipe();
  const top = Math.max(leak, r, w) + 1;
  let pid = 0;
  try {
    pid = c.spawn({
      path: "/bin/sh",
      argv: [
        "sh",
        "-c",
        `echo $$ $(ps -o sid= $$) >/proc/self/fd/${top}; exec sleep 30`,
      ],
      setsid: true,
      fds: [
        { fd: 0, open: "/dev/null" },
        { fd: 1, open: `${dir}/out`, write: true },
        { fd: 2, dup: 1 },
        { fd: top, dup: w },
      ],
    });
    c.close(w);
    const line = new TextDecoder().decode(await c.readAsync(r, 100)).trim()
      .split(/\s+/);
    assert.equal(Number(line[0]), pid);
    assert.equal(Number(line[1]), pid, "the child leads its own session");
    // The kernel's view of the child once it is `sleep` and settled (the
    // shell holds its redirection while echo writes; sleep may open its
    // locale as it starts): nothing else open. A leaked one would stay.
    const view = () => {
      try {
        const comm = Deno.readTextFileSync(`/proc/${pid}/comm`).trim();
        const fds = [...Deno.readDirSync(`/proc/${pid}/fd`)].map((e) =>
          Number(e.name)
        ).sort((a, b) => a - b);
        return `${comm}: ${fds.join(" ")}`;
      } catch (err) {
        // A descriptor closed while it was listed: look again.
        return String(err);
      }
    };
    const settled = `sleep: 0 1 2 ${top}`;
    let seen = "";
    await waitFor(
      `the child to be sleep with fds 0 1 2 ${top} only`,
      () => (seen = view()) === settled,
      10_000,
    ).catch((err) => {
      throw new Error(`${(err as Error).message}; last seen ${seen}`);
    });
  } finally {
    if (pid > 1) Deno.kill(pid, "SIGKILL");
    c.close(r);
    c.close(leak);
    Deno.removeSync(dir, { recursive: true });
  }
});

Deno.test("libc().stat() tells files apart by device and inode without following symlinks", () => {
  const dir = Deno.makeTempDirSync();
  try {
    Deno.writeTextFileSync(`${dir}/f`, "abc");
    Deno.symlinkSync(`${dir}/f`, `${dir}/l`);
    const f = c.stat(`${dir}/f`);
    const l = c.stat(`${dir}/l`);
    assert.equal(f.size, 3);
    assert.equal(f.type, "file");
    assert.equal(f.mode, Deno.statSync(`${dir}/f`).mode! & 0o7777);
    assert.equal(l.type, "symlink", "a symlink is not followed");
    const fd = c.open(`${dir}/f`, {});
    const viaFd = c.stat(fd);
    c.close(fd);
    assert.deepEqual([viaFd.dev, viaFd.ino], [f.dev, f.ino]);
    assert.equal(f.ino, BigInt(Deno.statSync(`${dir}/f`).ino!));
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});

Deno.test("libc().memfdName(), openFds() and selfCommand() see this process as the kernel does", () => {
  const fd = c.memfd("denod-test", new Uint8Array([1]));
  try {
    assert.equal(c.memfdName(fd), "denod-test");
    assert.ok(c.openFds().includes(fd));
    assert.equal(c.memfdName(0), null);
  } finally {
    c.close(fd);
  }
  const self = c.selfCommand();
  assert.equal(self.path, Deno.execPath());
  assert.ok(self.argv.includes("test"), self.argv.join(" "));
  const age = c.processAge(Deno.pid);
  assert.ok(age !== undefined && age >= 0 && age < 600);
  assert.equal(c.processAge(4194305), undefined);
});

Deno.test("libc().pidfdWait() returns when the process exits, or false on timeout", async () => {
  const child = new Deno.Command("sleep", { args: ["30"] }).spawn();
  const pidfd = c.pidfdOpen(child.pid);
  try {
    assert.equal(await c.pidfdWait(pidfd, 50), false);
    c.pidfdSignal(pidfd, "SIGTERM");
    assert.equal(await c.pidfdWait(pidfd, 5000), true);
    assert.equal((await child.status).signal, "SIGTERM");
  } finally {
    c.close(pidfd);
  }
});

Deno.test("libc().reap() collects an exit status or the killing signal of a spawned child", async () => {
  const run = async (script: string) => {
    const pid = c.spawn({
      path: "/bin/sh",
      argv: ["sh", "-c", script],
      fds: [{ fd: 0, open: "/dev/null" }],
    });
    const pidfd = c.pidfdOpen(pid);
    try {
      assert.equal(await c.pidfdWait(pidfd, Infinity), true);
      return c.reap(pidfd);
    } finally {
      c.close(pidfd);
    }
  };
  assert.deepEqual(await run("exit 7"), { exited: true, code: 7 });
  assert.deepEqual(await run("exit 0"), { exited: true, code: 0 });
  assert.deepEqual(await run("kill -SEGV $$"), {
    exited: false,
    signal: "SIGSEGV",
    coreDumped: false,
  });
  assert.deepEqual(await run("kill -KILL $$"), {
    exited: false,
    signal: "SIGKILL",
    coreDumped: false,
  });
});

Deno.test("libc().spawn() starts a child with the signals asked for blocked (and only those); a blocked SIGTERM stays pending", async () => {
  /** `/proc/PID/status` of a `sleep` spawned with `blocked`, once signalled with `signal` (if any). */
  const statusOf = async (blocked: Deno.Signal[], signal?: Deno.Signal) => {
    const pid = c.spawn({
      path: "/bin/sleep",
      argv: ["sleep", "30"],
      blocked,
      fds: [{ fd: 0, open: "/dev/null" }],
    });
    const pidfd = c.pidfdOpen(pid);
    try {
      if (signal !== undefined) c.pidfdSignal(pidfd, signal);
      // The kernel marks a blocked signal pending at once.
      const status = Deno.readTextFileSync(`/proc/${pid}/status`);
      const mask = (field: string) =>
        BigInt(
          `0x${status.match(new RegExp(`^${field}:\\s*(\\w+)`, "m"))![1]}`,
        );
      return { blocked: mask("SigBlk"), pending: mask("ShdPnd") };
    } finally {
      c.pidfdSignal(pidfd, "SIGKILL");
      await c.pidfdWait(pidfd, Infinity);
      c.reap(pidfd);
      c.close(pidfd);
    }
  };
  assert.deepEqual(await statusOf([]), { blocked: 0n, pending: 0n });
  // SIGHUP 1, SIGINT 2, SIGTERM 15: bits 0, 1 and 14.
  assert.deepEqual(
    await statusOf(["SIGTERM", "SIGINT", "SIGHUP"], "SIGTERM"),
    { blocked: 0x4003n, pending: 0x4000n },
  );
});

Deno.test("the source never uses SIGUSR1 (it opens a debugger under deno run)", () => {
  const root = new URL("../", import.meta.url).pathname;
  /** Source files under `dir`, relative to the root, subdirectories included. */
  const sources = (dir: string): string[] =>
    [...Deno.readDirSync(`${root}${dir}`)].flatMap((e) =>
      e.isDirectory ? sources(`${dir}/${e.name}`) : [`${dir}/${e.name}`]
    );
  for (const file of [...sources("src"), ...sources("ffi")]) {
    const text = Deno.readTextFileSync(`${root}${file}`);
    const uses = text.split("\n").filter((l) =>
      l.includes("SIGUSR1") && !/^\s*SIGUSR1: \d+,$/.test(l)
    );
    assert.deepEqual(uses, [], file);
  }
});

Deno.test("libc().openAt() never follows a symlink and never blocks on a FIFO; readBounded() stops at its limit; readAt() reads where asked; readerGone() sees a closed pipe", async () => {
  const dir = Deno.makeTempDirSync();
  try {
    Deno.writeTextFileSync(`${dir}/f`, "x".repeat(100));
    Deno.symlinkSync(`${dir}/f`, `${dir}/l`);
    assert.throws(
      () => c.openAt(null, `${dir}/l`, {}),
      (e: unknown) => e instanceof SysError && e.code === "ELOOP",
    );
    const handle = c.openAt(null, `${dir}/l`, { path: true });
    assert.equal(c.stat(handle).type, "symlink");
    c.close(handle);
    const mk = await new Deno.Command("mkfifo", { args: [`${dir}/p`] })
      .output();
    assert.ok(mk.success);
    // Read: returns at once; write-only with no reader: ENXIO, not a hang.
    c.close(c.openAt(null, `${dir}/p`, {}));
    assert.throws(
      () => c.openAt(null, `${dir}/p`, { write: true, append: true }),
      (e: unknown) => e instanceof SysError && e.code === "ENXIO",
    );
    const fd = c.openAt(null, `${dir}/f`, {});
    assert.equal(c.readBounded(fd, 100)?.length, 100);
    assert.equal(c.readBounded(fd, 99), null);
    assert.equal(c.readAt(fd, 97, 10).length, 3);
    assert.equal(c.readAt(fd, 100, 10).length, 0);
    const [r, w] = c.pipe();
    assert.equal(c.readerGone(w), false);
    c.close(r);
    assert.equal(c.readerGone(w), true);
    c.close(w);
    assert.equal(c.readerGone(fd), false);
    const st = c.stat(fd);
    assert.equal(st.nlink, 1);
    assert.equal(c.stat("/dev/null").rdev, "1:3");
    c.close(fd);
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});

Deno.test("libc().processView() tells who holds a file's flock; readProcessMemfd() reads only a memfd of that name", async () => {
  const dir = Deno.makeTempDirSync();
  const path = `${dir}/lock`;
  Deno.writeTextFileSync(path, "");
  const file = c.stat(path);
  const holder = new Deno.Command("flock", {
    args: ["-n", path, "sh", "-c", "echo locked; exec sleep 30"],
    stdout: "piped",
  }).spawn();
  try {
    const reader = holder.stdout.getReader();
    await reader.read();
    reader.releaseLock();
    const view = c.processView(holder.pid, file);
    assert.equal(view?.holdsLock, true);
    assert.equal(view?.exe, "/usr/bin/flock");
    assert.equal(view?.uid, Deno.uid());
    assert.equal(view?.ppid, Deno.pid);
    const self = c.processView(Deno.pid, file);
    assert.equal(self?.holdsLock, false);
    assert.equal(self?.exe, Deno.execPath());
    assert.equal(c.processView(holder.pid)?.holdsLock, null, "not asked");

    const m = c.memfd("denod-test-state", new TextEncoder().encode("hello"));
    const me = [Deno.uid()!];
    const got = c.readProcessMemfd(Deno.pid, "denod-test-state", 5, me);
    assert.equal(new TextDecoder().decode(got!), "hello");
    assert.equal(c.readProcessMemfd(Deno.pid, "denod-test-state", 4, me), null);
    assert.equal(c.readProcessMemfd(Deno.pid, "no-such-memfd", 5, me), null);
    assert.equal(
      c.readProcessMemfd(Deno.pid, "denod-test-state", 5, [12345]),
      null,
      "not owned by a uid the process runs as",
    );
    c.close(m);
  } finally {
    holder.kill("SIGKILL");
    await holder.status;
    await holder.stdout.cancel().catch(() => {});
    Deno.removeSync(dir, { recursive: true });
  }
  assert.equal(c.processView(holder.pid, file), null, "gone");
});
