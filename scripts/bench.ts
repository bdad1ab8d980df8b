/**
 * `deno task bench`: measures, in one run and each next to a reference
 * measured the same way in the same run, and prints one table (ours,
 * reference, ratio, target):
 *
 * - `start` → ready of the example daemon (wall time of the command, which
 *   returns only once the daemon said ready) against two bare `deno run`
 *   boots of an empty script (target ≤ 1.6×; the double spawn's three boots
 *   are 1.5×), and against a Node.js daemon that re-executes itself
 *   detached and waits on a readiness pipe (`_node_reexec.mjs`; target:
 *   faster);
 * - `status` and `stop` of a stopped daemon against one bare boot (≤ 1.3×);
 * - the idle daemon's RSS against an idle bare `Deno.serve` (≤ 1.15×), the
 *   supervisor's against an idle bare Deno process (≤ 1.1×), and their
 *   context switches over 10 s idle (target 0), after 12 s to settle (the
 *   runtime retires idle worker threads after 10 s);
 * - `stop` of a running daemon, `start --restart` → ready, and log
 *   throughput (file sink, syslog sink to a real rsyslogd, a plain append);
 * - `upgrade` and `restart` under four looping clients: wall time, and the
 *   requests that failed (`_upgradebench.ts`);
 * - the floor of `start`'s design, against two bare boots: a Deno script
 *   that re-executes itself twice as `start` does (caller → session leader →
 *   daemon) and serves HTTP, with nothing else (`_deno_chain.ts`);
 * - two floors under every command of ours, against one bare boot: a boot
 *   that only imports `mod.ts`, and one that makes one libc call through FFI;
 *   and under the idle daemon's and supervisor's RSS: the bare `Deno.serve`
 *   and the bare idle process, each importing `mod.ts` and calling libc once.
 *
 * The references run in the project, as the daemon does: under the same
 * `deno.json` and `package.json`, which Deno reads at every boot (about
 * 0.6 ms and 1.7 MiB here). `--outside` runs them from a directory with no
 * configuration instead.
 *
 * Usage: deno run -A scripts/bench.ts [--runs N] [--idle-seconds S] [--outside]
 */
import { parseArgs } from "node:util";
import { upgradeBench } from "./_upgradebench.ts";

const { values } = parseArgs({
  args: Deno.args,
  options: {
    runs: { type: "string", default: "15" },
    "idle-seconds": { type: "string", default: "10" },
    outside: { type: "boolean", default: false },
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
const dir = Deno.makeTempDirSync(
  values.outside
    ? { prefix: "denod-bench-" }
    : { dir: root, prefix: ".bench-" },
);
const empty = `${dir}/empty.ts`;
Deno.writeTextFileSync(empty, "");
// Two floors every command of ours stands on: loading denod's modules, and
// the first libc call through FFI.
const importOnly = `${dir}/import_only.ts`;
Deno.writeTextFileSync(importOnly, `import "${root}mod.ts";\n`);
const libcCall =
  `Deno.dlopen("libc.so.6", { getpid: { parameters: [], result: "i32" } }).symbols.getpid();\n`;
const oneFfiCall = `${dir}/one_ffi_call.ts`;
Deno.writeTextFileSync(oneFfiCall, libcCall);
const bareServer = `${dir}/bare_server.ts`;
Deno.writeTextFileSync(
  bareServer,
  `Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() { console.log("ready"); } }, () => new Response("ok"));\n`,
);
const bareIdle = `${dir}/bare_idle.ts`;
// Kept alive by a read that never completes: no timer, no server.
Deno.writeTextFileSync(
  bareIdle,
  `console.log("ready"); await Deno.stdin.read(new Uint8Array(1));\n`,
);
// The same two, with what every process of ours holds at least: denod's
// modules and libc through FFI.
const serverFloor = `${dir}/server_floor.ts`;
Deno.writeTextFileSync(
  serverFloor,
  `import "${root}mod.ts";\n${libcCall}${Deno.readTextFileSync(bareServer)}`,
);
const idleFloor = `${dir}/idle_floor.ts`;
Deno.writeTextFileSync(
  idleFloor,
  `import "${root}mod.ts";\n${libcCall}${Deno.readTextFileSync(bareIdle)}`,
);
const nodeReexec = `${root}scripts/_node_reexec.mjs`;
// A reference like the others: it runs where they run (`--outside`).
const denoChain = `${dir}/deno_chain.ts`;
Deno.copyFileSync(`${root}scripts/_deno_chain.ts`, denoChain);
const paths = ["--pidfile", `${dir}/d.pid`, "--log-file", `${dir}/d.log`];
const supervised = [
  "--pidfile",
  `${dir}/s.pid`,
  "--log-file",
  `${dir}/s.log`,
  "--restart",
  "on-failure",
];

async function run(args: string[], codes = [0]): Promise<number> {
  const t0 = performance.now();
  const out = await new Deno.Command(deno, {
    args,
    cwd: root,
    stdout: "null",
    stderr: "piped",
  })
    .output();
  const ms = performance.now() - t0;
  if (!codes.includes(out.code)) {
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

/**
 * Start a reference daemon (its launcher prints the daemon's pid once it is
 * ready); its wall time to ready, then kill it.
 */
async function referenceStart(
  command: string,
  args: string[],
): Promise<number | null> {
  const t0 = performance.now();
  const out = await new Deno.Command(command, {
    args,
    stdout: "piped",
    stderr: "null",
  }).output().catch(() => null);
  const ms = performance.now() - t0;
  if (out === null || !out.success) return null;
  Deno.kill(Number(new TextDecoder().decode(out.stdout).trim()), "SIGKILL");
  return ms;
}

/** The Node.js reference daemon (`_node_reexec.mjs`). */
const nodeStart = () => referenceStart("node", [nodeReexec]);
/** The double spawn alone, in Deno (`_deno_chain.ts`). */
async function chainStart(): Promise<number> {
  const ms = await referenceStart(deno, ["run", "-A", denoChain]);
  if (ms === null) throw new Error("The double-spawn reference failed");
  return ms;
}

/** An idle bare Deno process, printing "ready" once up. */
async function bareProcess(
  script: string,
): Promise<{ pid: number; kill(): Promise<void> }> {
  const child = new Deno.Command(deno, {
    args: ["run", "-A", script],
    stdin: "piped",
    stdout: "piped",
    stderr: "null",
  }).spawn();
  const reader = child.stdout.getReader();
  await reader.read(); // "ready"
  return {
    pid: child.pid,
    kill: async () => {
      child.kill("SIGKILL");
      await child.status;
      reader.releaseLock();
      await child.stdout.cancel();
      await child.stdin.abort().catch(() => {});
    },
  };
}

type Row = {
  what: string;
  ours: string;
  reference?: string;
  ratio?: number;
  target?: string;
  met?: boolean;
};

try {
  // Warm Deno's caches so that no run pays for transpiling.
  await run(["run", "-A", empty]);
  await run(["run", "-A", "daemon.ts", "start", ...paths, "--port", "0"]);
  await run(["run", "-A", "daemon.ts", "stop", ...paths]);
  const hasNode = (await nodeStart()) !== null;
  await chainStart();

  const starts: number[] = [];
  const stops: number[] = [];
  const bare: number[] = [];
  const oneBare: number[] = [];
  const nodeStarts: number[] = [];
  const chains: number[] = [];
  const statusStopped: number[] = [];
  const imports: number[] = [];
  const ffiCalls: number[] = [];
  const stopStopped: number[] = [];
  const supervisedStarts: number[] = [];
  for (let i = 0; i < RUNS; i++) {
    const first = await run(["run", "-A", empty]);
    oneBare.push(first);
    imports.push(await run(["run", "-A", importOnly]));
    ffiCalls.push(await run(["run", "-A", oneFfiCall]));
    bare.push(first + await run(["run", "-A", empty]));
    starts.push(
      await run(["run", "-A", "daemon.ts", "start", ...paths, "--port", "0"]),
    );
    if (hasNode) nodeStarts.push((await nodeStart())!);
    chains.push(await chainStart());
    stops.push(await run(["run", "-A", "daemon.ts", "stop", ...paths]));
    statusStopped.push(
      await run(["run", "-A", "daemon.ts", "status", ...paths], [3]),
    );
    stopStopped.push(await run(["run", "-A", "daemon.ts", "stop", ...paths]));
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
  const server = await bareProcess(bareServer);
  const idler = await bareProcess(bareIdle);
  const serverAtFloor = await bareProcess(serverFloor);
  const idlerAtFloor = await bareProcess(idleFloor);
  const [d, b, sv, sc, bi, bf, bif] = await Promise.all([
    idle(daemonPid),
    idle(server.pid),
    idle(supervisorPid),
    idle(childPid),
    idle(idler.pid),
    idle(serverAtFloor.pid),
    idle(idlerAtFloor.pid),
  ]);
  for (const p of [server, idler, serverAtFloor, idlerAtFloor]) await p.kill();
  await run(["run", "-A", "daemon.ts", "stop", ...paths]);
  await run(["run", "-A", "daemon.ts", "stop", ...supervised]);

  const throughput = await logThroughput();

  const ms = (x: number) => `${x.toFixed(1)} ms`;
  const mib = (kib: number) => `${(kib / 1024).toFixed(1)} MiB`;
  const within = (
    what: string,
    ours: number,
    ref: number,
    refWhat: string,
    limit: number,
    unit: (x: number) => string,
  ): Row => ({
    what,
    ours: unit(ours),
    reference: `${unit(ref)} ${refWhat}`,
    ratio: ours / ref,
    target: `≤ ${limit}×`,
    met: ours / ref <= limit,
  });
  const startMs = median(starts);
  const rows: Row[] = [
    within(
      "start → ready",
      startMs,
      median(bare),
      "two bare boots",
      1.6,
      ms,
    ),
    hasNode
      ? {
        what: "start → ready",
        ours: ms(startMs),
        reference: `${ms(median(nodeStarts))} Node.js re-exec`,
        ratio: startMs / median(nodeStarts),
        target: "< 1× (faster)",
        met: startMs < median(nodeStarts),
      }
      : {
        what: "start → ready",
        ours: ms(startMs),
        reference: "node not installed",
      },
    within(
      "status (stopped daemon)",
      median(statusStopped),
      median(oneBare),
      "one bare boot",
      1.3,
      ms,
    ),
    within(
      "stop (stopped daemon)",
      median(stopStopped),
      median(oneBare),
      "one bare boot",
      1.3,
      ms,
    ),
    within(
      "idle daemon RSS",
      d.rssKiB,
      b.rssKiB,
      "bare Deno.serve",
      1.15,
      mib,
    ),
    within(
      "idle supervisor RSS",
      sv.rssKiB,
      bi.rssKiB,
      "bare idle Deno",
      1.1,
      mib,
    ),
    {
      what: `context switches, ${IDLE_SECONDS} s idle`,
      ours: `${d.switches} daemon, ${sv.switches} supervisor`,
      reference: `${b.switches} bare Deno.serve`,
      target: "0",
      met: d.switches === 0 && sv.switches === 0,
    },
    { what: "stop (SIGTERM → gone)", ours: ms(median(stops)) },
    {
      what: "start --restart → ready",
      ours: ms(median(supervisedStarts)),
    },
    { what: "supervised daemon RSS", ours: mib(sc.rssKiB) },
    {
      what: "floor: the double spawn alone",
      ours: ms(median(chains)),
      reference: `${ms(median(bare))} two bare boots`,
      ratio: median(chains) / median(bare),
    },
    {
      what: "floor: RSS, Deno.serve + mod.ts + libc",
      ours: mib(bf.rssKiB),
      reference: `${mib(b.rssKiB)} bare Deno.serve`,
      ratio: bf.rssKiB / b.rssKiB,
    },
    {
      what: "floor: RSS, idle Deno + mod.ts + libc",
      ours: mib(bif.rssKiB),
      reference: `${mib(bi.rssKiB)} bare idle Deno`,
      ratio: bif.rssKiB / bi.rssKiB,
    },
    {
      what: "floor: a boot that imports mod.ts",
      ours: ms(median(imports)),
      reference: `${ms(median(oneBare))} one bare boot`,
      ratio: median(imports) / median(oneBare),
    },
    {
      what: "floor: a boot with one libc call",
      ours: ms(median(ffiCalls)),
      reference: `${ms(median(oneBare))} one bare boot`,
      ratio: median(ffiCalls) / median(oneBare),
    },
  ];
  console.log(
    `denod bench — ${RUNS} runs, medians; ${Deno.build.target}, deno ${Deno.version.deno}`,
  );
  console.log("");
  const table = [
    ["measure", "ours", "reference (same run)", "ratio", "target", "met"],
    ...rows.map((r) => [
      r.what,
      r.ours,
      r.reference ?? "",
      r.ratio === undefined ? "" : `${r.ratio.toFixed(2)}×`,
      r.target ?? "",
      r.met === undefined ? "" : r.met ? "yes" : "NO",
    ]),
  ];
  const widths = table[0].map((_, i) =>
    Math.max(...table.map((row) => row[i].length))
  );
  const line = (row: string[]) =>
    `| ${row.map((c, i) => c.padEnd(widths[i])).join(" | ")} |`;
  console.log(line(table[0]));
  console.log(`|${widths.map((w) => "-".repeat(w + 2)).join("|")}|`);
  for (const row of table.slice(1)) console.log(line(row));
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
