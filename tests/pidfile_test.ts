import assert from "node:assert/strict";
import { libc } from "../ffi/mod.ts";
import {
  inspectPidfile,
  parsePid,
  Pidfile,
  PidfileLockedError,
  type PidfileState,
} from "../src/pidfile.ts";
import { DaemonError } from "../src/errors.ts";

const c = libc();

function tmp(): string {
  return Deno.makeTempDirSync({ prefix: "denod-pidfile-" });
}

/** A separate process that holds `path` locked (flock) until killed. */
async function holder(path: string, pid?: number): Promise<Deno.ChildProcess> {
  const code = `
    import { Pidfile } from "${new URL("../src/pidfile.ts", import.meta.url)}";
    import { libc } from "${new URL("../ffi/mod.ts", import.meta.url)}";
    const p = Pidfile.acquire(libc(), ${JSON.stringify(path)});
    ${pid === undefined ? "" : `p.write(${pid});`}
    console.log("locked");
    setInterval(() => {}, 1000);`;
  const child = new Deno.Command(Deno.execPath(), {
    args: ["eval", code],
    stdout: "piped",
  }).spawn();
  const reader = child.stdout.getReader();
  const { value } = await reader.read();
  assert.match(new TextDecoder().decode(value), /locked/);
  reader.releaseLock();
  return child;
}

async function end(child: Deno.ChildProcess): Promise<void> {
  child.kill("SIGKILL");
  await child.status;
  await child.stdout.cancel();
}

Deno.test("Pidfile.acquire() creates a 0644 file even under umask 077, and remove() unlinks it", () => {
  const dir = tmp();
  const old = Deno.umask(0o077);
  try {
    const p = Pidfile.acquire(c, `${dir}/a.pid`);
    p.write(4242);
    assert.equal(Deno.readTextFileSync(`${dir}/a.pid`), "4242\n");
    assert.equal(Deno.statSync(`${dir}/a.pid`).mode! & 0o777, 0o644);
    assert.equal(p.read(), 4242);
    assert.ok(p.remove());
    assert.throws(() => Deno.statSync(`${dir}/a.pid`));
    assert.ok(p.remove(), "a second remove is harmless");
  } finally {
    Deno.umask(old);
    Deno.removeSync(dir, { recursive: true });
  }
});

Deno.test("Pidfile.acquire() refuses symlinks and non-regular files", () => {
  const dir = tmp();
  try {
    Deno.writeTextFileSync(`${dir}/target`, "x");
    Deno.symlinkSync(`${dir}/target`, `${dir}/link.pid`);
    assert.throws(() => Pidfile.acquire(c, `${dir}/link.pid`), /symbolic link/);
    assert.equal(Deno.readTextFileSync(`${dir}/target`), "x");
    Deno.mkdirSync(`${dir}/dir.pid`);
    assert.throws(() => Pidfile.acquire(c, `${dir}/dir.pid`), DaemonError);
    assert.throws(
      () => Pidfile.acquire(c, `${dir}/missing/x.pid`),
      /directory ".*\/missing" does not exist/,
    );
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});

/** A pidfile state without the file's stat. */
function summary(st: PidfileState): { state: string; pid?: number } {
  return "pid" in st ? { state: st.state, pid: st.pid } : { state: st.state };
}

Deno.test("Pidfile.acquire() fails while another process holds the lock, and succeeds once it is gone", async () => {
  const dir = tmp();
  const path = `${dir}/b.pid`;
  const child = await holder(path, 777);
  try {
    assert.throws(() => Pidfile.acquire(c, path), PidfileLockedError);
    assert.deepEqual(summary(inspectPidfile(c, path)), {
      state: "running",
      pid: 777,
    });
  } finally {
    await end(child);
  }
  assert.deepEqual(summary(inspectPidfile(c, path)), {
    state: "stale",
    pid: 777,
  });
  const p = Pidfile.acquire(c, path);
  p.remove();
  assert.deepEqual(inspectPidfile(c, path), { state: "absent" });
  Deno.removeSync(dir, { recursive: true });
});

Deno.test("inspectPidfile() reports a locked file with no pid yet as starting", async () => {
  const dir = tmp();
  const child = await holder(`${dir}/c.pid`);
  try {
    assert.equal(inspectPidfile(c, `${dir}/c.pid`).state, "starting");
  } finally {
    await end(child);
    Deno.removeSync(dir, { recursive: true });
  }
});

Deno.test("parsePid() accepts one decimal pid and nothing else", () => {
  assert.equal(parsePid("123\n"), 123);
  assert.equal(parsePid("123"), 123);
  for (
    const bad of [
      "",
      "\n",
      "0",
      "1",
      "-5",
      "12 34",
      "abc",
      "123\n456\n",
      "99999999",
    ]
  ) {
    assert.equal(parsePid(bad), undefined, JSON.stringify(bad));
  }
});
