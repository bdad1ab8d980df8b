/**
 * `deno task bench`: measures, in one run and side by side with references
 * measured the same way,
 *
 * - `start` → ready of the example daemon (wall time of the command, which
 *   returns only once the daemon answers), against two bare `deno run`
 *   boots of an empty script;
 * - `stop` (wall time until the daemon is gone);
 * - log throughput: lines per second through the file sink and the syslog
 *   sink (to a real rsyslogd, when installed), next to a plain
 *   `Deno.writeTextFileSync` append loop of the same count;
 * - the idle daemon's RSS and context switches over 10 s (after 12 s to
 *   settle: the runtime retires idle worker threads after 10 s), against an
 *   idle bare Deno process serving HTTP the same way; and the same for the
 *   supervisor of `start --restart` and the daemon it runs;
 * - `start --restart` → ready (one more boot: the supervisor);
 * - `upgrade` and `restart` under four looping clients: wall time, and the
 *   requests that failed (`_upgradebench.ts`).
 *
 * Usage: deno run -A scripts/bench.ts [--runs N] [--idle-seconds S]
 */
import { parseArgs } from "node:util";
import { upgradeBench } from "./_upgradebench.ts";

const { values } = parseArgs({
  args: Deno.args,
  options: {
    runs: { type: "string", default: "15" },
    "idle-seconds": { type: "string", default: "10" },
  },
});
const RUNS = Number(values.runs);
const IDLE_SECONDS = Number(values["idle-seconds"]);
if (!(RUNS > 0 && IDLE_SECONDS > 0)) {
  console.error("bench: --runs and --idle-seconds take positive numbers");
  Deno.exit(2);
}

const root = new URL("../", import.meta.url).pathname;
const deno = Deno.execPath();
const dir = Deno.makeTempDirSync({ prefix: "denod-bench-" });
const empty = `${dir}/empty.ts`;
Deno.writeTextFileSync(empty, "");
const bareServer = `${dir}/bare_server.ts`;
Deno.writeTextFileSync(
  bareServer,
  `Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() { console.log("ready"); } }, () => new Response("ok"));\n`,
);
const paths = ["--pidfile", `${dir}/d.pid`, "--log-file", `${dir}/d.log`];
const supervised = [
  "--pidfile",
  `${dir}/s.pid`,
  "--log-file",
  `${dir}/s.log`,
  "--restart",
  "on-failure",
];

async function run(args: string[]): Promise<number> {
  const t0 = performance.now();
  const out = await new Deno.Command(deno, {
    args,
    cwd: root,
    stdout: "null",
    stderr: "piped",
  })
    .output();
  const ms = performance.now() - t0;
  if (!out.success) {
    throw new Error(
      `${args.join(" ")} failed: ${new TextDecoder().decode(out.stderr)}`,
    );
  }
  return ms;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

/** RSS (KiB) and context switches of each thread of `pid`, by thread id. */
function sample(pid: number): { rssKiB: number; threads: Map<string, number> } {
  const status = Deno.readTextFileSync(`/proc/${pid}/status`);
  const rssKiB = Number(status.match(/VmRSS:\s+(\d+)/)![1]);
  const threads = new Map<string, number>();
  for (const t of Deno.readDirSync(`/proc/${pid}/task`)) {
    try {
      const s = Deno.readTextFileSync(`/proc/${pid}/task/${t.name}/status`);
      threads.set(
        t.name,
        Number(s.match(/^voluntary_ctxt_switches:\s+(\d+)/m)![1]) +
          Number(s.match(/^nonvoluntary_ctxt_switches:\s+(\d+)/m)![1]),
      );
    } catch {
      // thread ended between listing and reading
    }
  }
  return { rssKiB, threads };
}

/** Runtime worker threads retire after 10 s idle; measure after that. */
const SETTLE_MS = 12_000;

async function idle(
  pid: number,
): Promise<{ rssKiB: number; switches: number; threadsChanged: number }> {
  await new Promise((r) => setTimeout(r, SETTLE_MS));
  const a = sample(pid);
  await new Promise((r) => setTimeout(r, IDLE_SECONDS * 1000));
  const b = sample(pid);
  let switches = 0;
  let threadsChanged = 0;
  for (const [tid, n] of b.threads) {
    const before = a.threads.get(tid);
    if (before === undefined) threadsChanged++;
    else switches += n - before;
  }
  for (const tid of a.threads.keys()) if (!b.threads.has(tid)) threadsChanged++;
  return { rssKiB: b.rssKiB, switches, threadsChanged };
}

const LOG_LINES = 20_000;

/** Lines per second through the file sink, syslog (a real rsyslogd) and a plain append loop. */
async function logThroughput(): Promise<[string, string][]> {
  const helper = `${root}scripts/_logbench.ts`;
  const q = (s: string) => `'${s.replaceAll("'", `'\\''`)}'`;
  const once = async (mode: string, where: string, redirect = "") => {
    const out = await new Deno.Command("/bin/sh", {
      args: [
        "-c",
        `${q(deno)} run -A ${q(helper)} ${mode} ${LOG_LINES} ${
          q(where)
        } ${redirect}`,
      ],
      stdout: "piped",
    }).output();
    const ms = Number(new TextDecoder().decode(out.stdout).trim());
    return out.success && ms > 0
      ? String(Math.round(LOG_LINES / (ms / 1000)))
      : "failed";
  };
  const rows: [string, string][] = [
    [
      "file sink (LogTape → fd 2 → file)",
      await once("file", "-", `2>>${q(`${dir}/throughput.log`)}`),
    ],
    [
      "plain Deno.writeTextFileSync append",
      await once("plain", `${dir}/plain.log`),
    ],
  ];
  const hasRsyslog =
    (await new Deno.Command("/bin/sh", { args: ["-c", "command -v rsyslogd"] })
      .output())
      .success;
  if (!hasRsyslog) {
    return [...rows, ["syslog (rsyslogd)", "rsyslogd not installed"]];
  }
  const socket = `${dir}/log.sock`;
  Deno.writeTextFileSync(
    `${dir}/rsyslog.conf`,
    `global(workDirectory="${dir}")\nmodule(load="imuxsock" SysSock.Use="off")\n` +
      `input(type="imuxsock" Socket="${socket}" CreatePath="on")\n*.* action(type="omfile" file="${dir}/syslog.out")\n`,
  );
  const rsyslogd = new Deno.Command("rsyslogd", {
    args: ["-n", "-f", `${dir}/rsyslog.conf`, "-i", `${dir}/rsyslogd.pid`],
    stdout: "null",
    stderr: "null",
  }).spawn();
  try {
    for (
      let i = 0;
      i < 200 && !(await Deno.stat(socket).catch(() => null));
      i++
    ) {
      await new Promise((r) => setTimeout(r, 10));
    }
    rows.push(["syslog sink (→ rsyslogd)", await once("syslog", socket)]);
  } finally {
    rsyslogd.kill("SIGKILL");
    await rsyslogd.status;
  }
  return rows;
}

try {
  // Warm Deno's caches so that no run pays for transpiling.
  await run(["run", "-A", empty]);
  await run(["run", "-A", "daemon.ts", "start", ...paths, "--port", "0"]);
  await run(["run", "-A", "daemon.ts", "stop", ...paths]);

  const starts: number[] = [];
  const stops: number[] = [];
  const bare: number[] = [];
  const supervisedStarts: number[] = [];
  for (let i = 0; i < RUNS; i++) {
    bare.push(
      await run(["run", "-A", empty]) + await run(["run", "-A", empty]),
    );
    starts.push(
      await run(["run", "-A", "daemon.ts", "start", ...paths, "--port", "0"]),
    );
    stops.push(await run(["run", "-A", "daemon.ts", "stop", ...paths]));
    supervisedStarts.push(
      await run([
        "run",
        "-A",
        "daemon.ts",
        "start",
        ...supervised,
        "--port",
        "0",
      ]),
    );
    await run(["run", "-A", "daemon.ts", "stop", ...supervised]);
  }

  await run(["run", "-A", "daemon.ts", "start", ...paths, "--port", "0"]);
  const daemonPid = Number(Deno.readTextFileSync(`${dir}/d.pid`).trim());
  await run(["run", "-A", "daemon.ts", "start", ...supervised, "--port", "0"]);
  const supervisorPid = Number(Deno.readTextFileSync(`${dir}/s.pid`).trim());
  const childPid = JSON.parse(Deno.readTextFileSync(`${dir}/s.supervisor`))
    .child as number;
  const bareChild = new Deno.Command(deno, {
    args: ["run", "-A", bareServer],
    stdout: "piped",
    stderr: "null",
  }).spawn();
  const reader = bareChild.stdout.getReader();
  await reader.read(); // "ready"
  const [d, b, sv, sc] = await Promise.all([
    idle(daemonPid),
    idle(bareChild.pid),
    idle(supervisorPid),
    idle(childPid),
  ]);
  bareChild.kill("SIGKILL");
  await bareChild.status;
  reader.releaseLock();
  await bareChild.stdout.cancel();
  await run(["run", "-A", "daemon.ts", "stop", ...paths]);
  await run(["run", "-A", "daemon.ts", "stop", ...supervised]);

  const throughput = await logThroughput();

  const ms = (x: number) => `${x.toFixed(1)} ms`;
  const startMs = median(starts);
  const bareMs = median(bare);
  console.log(
    `denod bench — ${RUNS} runs, medians; ${Deno.build.target}, deno ${Deno.version.deno}`,
  );
  console.log("");
  console.log(`start → ready (example daemon)        ${ms(startMs)}`);
  console.log(`two bare deno run boots (reference)   ${ms(bareMs)}`);
  console.log(
    `  ratio                               ${
      (startMs / bareMs).toFixed(2)
    }× (target ≤ 1.15×)`,
  );
  console.log(`stop (SIGTERM → gone)                 ${ms(median(stops))}`);
  console.log(
    `start --restart → ready (supervised)  ${ms(median(supervisedStarts))}`,
  );
  console.log("");
  console.log(
    `idle ${IDLE_SECONDS} s                       RSS     context switches   threads started/ended`,
  );
  const row = (what: string, x: typeof d) =>
    console.log(
      `  ${what.padEnd(28)} ${(x.rssKiB / 1024).toFixed(1).padStart(6)} MiB ${
        String(x.switches).padStart(8)
      } ${String(x.threadsChanged).padStart(12)}`,
    );
  row("daemon", d);
  row("bare deno (Deno.serve)", b);
  row("supervisor (--restart)", sv);
  row("its daemon", sc);
  console.log(
    `  RSS ratio daemon / bare: ${
      (d.rssKiB / b.rssKiB).toFixed(2)
    }× (target ≤ 1.15×); context switches: target 0 for the daemon and the supervisor`,
  );
  console.log("");
  console.log(`log throughput, ${LOG_LINES} lines          lines/s`);
  for (const [what, perSecond] of throughput) {
    console.log(`  ${what.padEnd(36)} ${perSecond}`);
  }
  console.log("");
  console.log((await upgradeBench(root, dir, RUNS)).join("\n"));
} finally {
  try {
    await run(["run", "-A", "daemon.ts", "stop", ...paths]);
  } catch {
    // not running
  }
  Deno.removeSync(dir, { recursive: true });
}
