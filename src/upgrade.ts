/**
 * `upgrade`: start a new generation of a running daemon from the program as
 * it is now on disk, and stop the old one only once the new one is ready.
 *
 * The pidfile's lock is never released. The old daemon holds it on a
 * read-only descriptor; `upgrade` (root, or the daemon's own user) copies
 * that descriptor with `pidfd_getfd(2)` — the same open file description,
 * so the same lock — and hands the copy to the new generation as `start`
 * hands its own. The old daemon runs unprivileged and is not believed: the
 * copy is checked against the kernel (fdinfo shows the lock on it, it is
 * read-only, it is the file the pidfile's path names), never against what
 * the old daemon says. The pidfile keeps naming the old daemon until the new
 * one is ready; then `upgrade` writes the new pid and stops the old one,
 * which leaves the pidfile to the pid it names.
 *
 * @module
 */
import type { FileStat, Libc } from "../ffi/mod.ts";
import { SysError } from "../ffi/mod.ts";
import { DaemonError, Exit } from "./errors.ts";
import { inspectPidfile, pidfilePolicy } from "./pidfile.ts";
import { pinChild, pinDaemon } from "./pin.ts";
import { type Pinned, terminate } from "./process.ts";
import {
  makePrivateDenoDir,
  type PrivateDenoDir,
  removePrivateDenoDir,
} from "./denodir.ts";
import { openChecked } from "./safe_open.ts";
import { spawnStage, SUPERVISOR_GRACE } from "./stage.ts";
import {
  awaitReadiness,
  endOf,
  failure,
  leaderEnv,
  openStart,
  type StartOptions,
} from "./start.ts";
import { within } from "./timer.ts";
import {
  exitPath,
  type LaunchRecord,
  readLaunchRecord,
  removeUpgradeFile,
  writeLaunchRecord,
  writeUpgradeFile,
} from "./state.ts";
import type { CoreOptions } from "./options.ts";
import {
  nextGeneration,
  type UpgradeResult,
  upgradeSupervised,
} from "./upgrade_supervised.ts";

export type { UpgradeResult };

/** The launch record of a daemon `upgrade` may replace, or why not. */
function upgradable(
  libc: Libc,
  path: string,
  pid: number,
): LaunchRecord {
  const record = readLaunchRecord(libc, path);
  if (record === null) {
    throw new DaemonError(
      `Cannot upgrade pid ${pid}: its launch record is missing (stop and start it once)`,
    );
  }
  if (record.foreground) {
    throw new DaemonError(
      `Not upgrading pid ${pid}: it runs in the foreground (run) and its service manager owns the process; restart it there (systemctl restart), or have the manager hold the listening socket (socket activation) so that a restart refuses no connection`,
    );
  }
  return record;
}

/**
 * Replace the running daemon with a new generation of it.
 *
 * @param libc The OS interface.
 * @param core The new generation's core options (the pidfile is set).
 * @param options As for `start`, with the program to run and the options to record.
 * @returns The new generation.
 * @throws {DaemonError} Exit 7 when nothing runs; 1 with the new
 * generation's own error when it fails before it is ready (the old one
 * serves on, untouched); 4 when the lock cannot be taken over.
 */
export async function upgrade(
  libc: Libc,
  core: CoreOptions & { pidfile: string },
  options: StartOptions & { program: string[] },
): Promise<UpgradeResult> {
  const path = core.pidfile;
  const old = await pinDaemon(libc, path, core.readyTimeout * 1000);
  if (old === null) {
    throw new DaemonError("Not running: start it instead", Exit.NOT_RUNNING);
  }
  try {
    const record = upgradable(libc, path, old.pid);
    if (record.supervised) {
      return await upgradeSupervised(libc, core, options, record, old);
    }
    if (core.restart !== "no") {
      throw new DaemonError(
        "Cannot add --restart by an upgrade: restart the daemon with it",
        Exit.USAGE,
      );
    }
    return await replace(libc, core, options, record, old);
  } finally {
    if (old.pidfd >= 0) libc.close(old.pidfd);
  }
}

/** The unsupervised upgrade, once the old daemon is pinned. */
async function replace(
  libc: Libc,
  core: CoreOptions & { pidfile: string },
  options: StartOptions & { program: string[] },
  record: LaunchRecord,
  old: Pinned,
): Promise<UpgradeResult> {
  const path = core.pidfile;
  const { logFd } = openStart(libc, core, options);
  let lock = -1;
  let writer = -1;
  let exit: number | undefined;
  // Under deno run --user, the new generation's own Deno caches
  // (denodir.ts): it removes them before it drops privileges, we do once
  // it is ready or gone.
  let denoDir: PrivateDenoDir | null = null;
  try {
    const file = pidfileOf(libc, path, old.pid);
    lock = takeLock(libc, old, file);
    writer = openWriter(libc, path, file);
    const generation = nextGeneration(libc, old.pid);
    exit = openExitRecord(libc, path);
    const env = leaderEnv(core, options.declaredEnv);
    if (options.identity !== undefined) {
      denoDir = makePrivateDenoDir(libc, env);
    }
    const next = await spawnGeneration(libc, {
      exitFd: exit,
      core,
      options,
      logFd,
      lock,
      upgrade: { generation, previous: old.pid },
      env,
      denoDir,
    });
    // Until the pidfile names it, a failure of ours must not leave the new
    // generation running beside the old one on the shared lock.
    let handedOver = false;
    const noted = noteUpgrade(libc, path, { pid: old.pid, next: next.pid });
    try {
      const wait = await awaitReadiness(libc, next.readEnd, core.readyTimeout);
      const { outcome } = wait;
      if (
        outcome === null || typeof outcome !== "object" ||
        outcome.kind !== "READY"
      ) {
        // Worded first: the log's last lines are what it said while starting.
        const why = failure(libc, wait, core, logFd, false, {
          ended: outcome === null ? await endOf(libc, next) : undefined,
        });
        await terminate(libc, next, core.stopTimeout).catch(() => {});
        next.pidfd = -1;
        await within(wait.finished, 1000);
        wait.close();
        const code = typeof outcome === "object" && outcome?.kind === "ERROR"
          ? wait.code
          : Exit.FAILURE;
        throw new DaemonError(why, code);
      }
      wait.close();
      // From here on the pidfile names the new generation, which holds the
      // lock through its copy; the old one leaves the file to it.
      writeLaunchRecord(libc, path, {
        ...record,
        uids: uidsOf(libc, options),
        options: { ...record.options, ...options.given },
      });
      libc.replace(writer, new TextEncoder().encode(`${next.pid}\n`));
      handedOver = true;
      // terminate() closes the pidfd: it is no longer ours to close.
      const pinned = { ...old };
      old.pidfd = -1;
      await terminate(libc, pinned, core.stopTimeout + SUPERVISOR_GRACE)
        .catch(() => {});
      return { pid: next.pid, previous: old.pid, generation };
    } finally {
      if (!handedOver && next.pidfd >= 0) {
        await terminate(libc, next, core.stopTimeout).catch(() => {});
        next.pidfd = -1;
      }
      if (next.pidfd >= 0) libc.close(next.pidfd);
      if (noted) removeUpgradeFile(libc, path);
    }
  } finally {
    if (denoDir !== null) removePrivateDenoDir(denoDir.dir);
    if (writer >= 0) libc.close(writer);
    if (lock >= 0) libc.close(lock);
    if (exit !== undefined) libc.close(exit);
    libc.close(logFd);
  }
}

/**
 * Record the upgrade for `status`, if we can: it is only a hint. Beside a
 * pidfile in a shared directory another user may have put a file of that
 * name first (refused, and not ours to remove); failing the upgrade then
 * would let them block every upgrade.
 *
 * @returns Whether the file is ours to remove afterwards.
 */
function noteUpgrade(
  libc: Libc,
  path: string,
  upgrade: { pid: number; next: number },
): boolean {
  try {
    writeUpgradeFile(libc, path, upgrade);
    return true;
  } catch {
    return false;
  }
}

/** The uids the new generation runs as: the caller's, and the one it drops to. */
function uidsOf(libc: Libc, options: StartOptions): number[] {
  const euid = libc.geteuid();
  return [...new Set([euid, options.identity?.user?.uid ?? euid])];
}

/** The pidfile as the kernel has it, while `pid` holds its lock. */
function pidfileOf(libc: Libc, path: string, pid: number): FileStat {
  const st = inspectPidfile(libc, path);
  if (st.state !== "running" || st.pid !== pid) {
    throw new DaemonError(
      `Pidfile ${JSON.stringify(path)} changed during the upgrade`,
    );
  }
  return st.file;
}

/**
 * Copy the old daemon's locked descriptor into this process. Which of its
 * descriptors to copy is read from /proc; what was copied is then checked
 * on our side — the old daemon may swap its descriptors meanwhile.
 *
 * @returns Our descriptor, on the same open file description.
 * @throws {DaemonError} When no read-only descriptor of the pidfile carries
 * the lock (exit 4 when `pidfd_getfd` is not allowed).
 */
function takeLock(libc: Libc, old: Pinned, file: FileStat): number {
  const refuse = (why: string, code: number = Exit.FAILURE) =>
    new DaemonError(
      `Cannot take over the pidfile's lock from pid ${old.pid}: ${why}`,
      code,
    );
  const theirs = libc.lockingFds(old.pid, file);
  if (theirs === null) throw refuse("its descriptors cannot be read", 4);
  for (const { fd, access } of theirs) {
    // A writable description would let the daemon's user write the pidfile.
    if (access !== "read") continue;
    let mine: number;
    try {
      mine = libc.pidfdGetfd(old.pidfd, fd);
    } catch (err) {
      if (err instanceof SysError && err.code === "EPERM") {
        throw refuse(
          "permission denied (pidfd_getfd needs ptrace rights over it: run upgrade as root, or as its user where /proc/sys/kernel/yama/ptrace_scope allows)",
          Exit.PRIVILEGE,
        );
      }
      if (err instanceof SysError && err.code === "EBADF") continue;
      throw err;
    }
    const st = libc.stat(mine);
    const held = libc.lockingFds("self", file)?.find((d) => d.fd === mine);
    if (
      st.dev === file.dev && st.ino === file.ino && held?.access === "read"
    ) {
      return mine;
    }
    libc.close(mine);
  }
  throw refuse(
    "it holds the lock on no read-only descriptor of the pidfile",
  );
}

/**
 * A descriptor on the exit record for the new generation, which writes its
 * end there in turn (the old one says there that it was upgraded). The
 * record is root's (or the caller's): opened afresh with the pidfile's
 * rules, never copied from the old daemon. `undefined` when there is none
 * (a daemon started before records were kept): the new one keeps no record.
 */
function openExitRecord(libc: Libc, path: string): number | undefined {
  try {
    return openChecked(
      libc,
      exitPath(path),
      { ...pidfilePolicy(libc.geteuid()), what: "exit record" },
      { write: true },
      { privateWrite: true },
    ).fd;
  } catch {
    return undefined;
  }
}

/** A descriptor to write the pid through, checked to be the locked file. */
function openWriter(libc: Libc, path: string, file: FileStat): number {
  const { fd, stat } = openChecked(
    libc,
    path,
    pidfilePolicy(libc.geteuid()),
    { write: true },
    { privateWrite: true },
  );
  if (stat.dev !== file.dev || stat.ino !== file.ino) {
    libc.close(fd);
    throw new DaemonError(
      `Pidfile ${JSON.stringify(path)} changed during the upgrade`,
    );
  }
  return fd;
}

/** A new generation, spawned and pinned, not yet ready. */
interface NextGeneration extends Pinned {
  /** The read end of its readiness pipe. */
  readEnd: number;
}

/**
 * Spawn a session leader that spawns the new generation on the shared lock
 * and sends its pid back; pin that daemon once the kernel shows it to be
 * our child (the leader's, reparented to us).
 */
async function spawnGeneration(
  libc: Libc,
  { core, options, logFd, lock, upgrade, exitFd, env, denoDir }: {
    exitFd: number | undefined;
    core: CoreOptions & { pidfile: string };
    options: StartOptions & { program: string[] };
    logFd: number;
    lock: number;
    upgrade: { generation: number; previous: number };
    /** The environment to spawn with ({@linkcode leaderEnv}). */
    env: Record<string, string> | undefined;
    denoDir: PrivateDenoDir | null;
  },
): Promise<NextGeneration> {
  // Once the leader ends, the new generation is reparented to us, not to
  // init: unreaped, its pid stays its own while we pin and watch it.
  libc.becomeSubreaper();
  const [readEnd, readyW] = libc.pipe();
  const [pidR, pidW] = libc.pipe();
  let leader: Pinned;
  try {
    const pid = spawnStage(
      libc,
      {
        stage: "leader",
        pidfile: core.pidfile,
        noNewPrivs: core.noNewPrivs,
        daemon: {
          core,
          options: options.options,
          identity: options.identity ?? null,
        },
        supervise: null,
        upgrade,
        denoDir,
      },
      {
        stdio: { out: logFd },
        readyFd: readyW,
        pidfileFd: lock,
        pidfileWriteFd: pidW,
        exitFd,
        setsid: true,
        env,
        command: {
          path: options.program[0],
          argv: [...options.program, "upgrade"],
        },
      },
    );
    // Our own child, not reaped before we exit: its pid cannot be reused.
    leader = { pid, pidfd: libc.pidfdOpen(pid) };
  } catch (err) {
    libc.close(readEnd);
    libc.close(pidR);
    throw err;
  } finally {
    libc.close(readyW);
    libc.close(pidW);
  }
  try {
    await libc.pidfdWait(leader.pidfd, Infinity);
    const text = await readToEnd(libc, pidR);
    const pid = /^[0-9]{1,10}$/.test(text) ? Number(text) : undefined;
    // Our own child, not the lock's holder: a fork of the old daemon holds
    // that lock too, and could have taken the pid of a new generation that
    // died, were it not ours to reap.
    const pinned = pid === undefined
      ? null
      : pinChild(libc, libc.getpid(), pid);
    if (pid === undefined || pinned === null) {
      // The leader said why on the readiness pipe, if it could.
      const wait = await awaitReadiness(libc, readEnd, 1);
      wait.close();
      throw new DaemonError(failure(libc, wait, core, logFd, false));
    }
    return { ...pinned, readEnd };
  } finally {
    libc.close(leader.pidfd);
    libc.close(pidR);
  }
}

/** What the leader wrote down a pipe, once it closed its end (64 bytes at most). */
async function readToEnd(libc: Libc, fd: number): Promise<string> {
  let text = "";
  for (let chunk; (chunk = await libc.readAsync(fd, 64)).length > 0;) {
    text += new TextDecoder().decode(chunk);
    if (text.length > 64) break;
  }
  return text.trim();
}
