/**
 * The READMEs work as written: README.md's and a new project's shell blocks
 * run, in order, as a reader would type them — as root on a private network,
 * `/run`, `/var/log`, `/usr/local/bin` and `/etc` (a copy), with no global
 * `deno` — or say why not; their TypeScript passes `deno lint` and `deno check`.
 *
 * A block is marked by the HTML comment on the line before it (invisible when
 * rendered): `<!-- not run by tests/readme_test.ts: REASON -->`, or
 * `<!-- run by tests/readme_test.ts without scp and systemctl -->` for a deploy
 * recipe, which runs here with `scp HOST:` copying into the current directory
 * (a stand-in for the compiled program, as `deno compile` needs a download),
 * without its `systemctl` lines, and with each unit it writes checked by
 * `systemd-analyze verify`.
 */
import assert from "node:assert/strict";
import { readme as projectReadme } from "../scripts/new.ts";
import { asRoot, sh, shq, withScratch } from "./helpers.ts";

const ROOT = new URL("../", import.meta.url).pathname;

/** One fenced block of a README. */
interface Block {
  /** Where it starts, for messages: `README.md:12`. */
  where: string;
  lang: string;
  text: string;
  /** run as written; rehearse a deploy recipe; skip, with the reason. */
  mode: "run" | "rehearse" | "skip";
  reason?: string;
}

const SHELL = new Set(["sh", "bash", "shell", "console"]);
const MARKER =
  /^<!-- (not run|run) by (?:denod's )?tests\/readme_test\.ts(?:: (.+)| without scp and systemctl| without systemctl) -->$/;

/** The fenced blocks of a markdown text, with the marker before each. */
export function blocks(markdown: string, file: string): Block[] {
  const lines = markdown.split("\n");
  const found: Block[] = [];
  for (let i = 0; i < lines.length; i++) {
    const open = lines[i].match(/^```(\S*)\s*$/);
    if (!open) continue;
    const end = lines.indexOf("```", i + 1);
    assert.ok(end > i, `${file}:${i + 1}: the block never ends`);
    let before = i - 1;
    while (before >= 0 && lines[before].trim() === "") before--;
    const marker = before >= 0 ? lines[before].match(MARKER) : null;
    found.push({
      where: `${file}:${i + 1}`,
      lang: open[1],
      text: lines.slice(i + 1, end).join("\n"),
      mode: marker === null ? "run" : marker[1] === "run" ? "rehearse" : "skip",
      reason: marker?.[2],
    });
    i = end;
  }
  return found;
}

/** The shell lines that run a block (a deploy recipe rewritten as above). */
function script(block: Block): string {
  const body = block.mode === "run" ? block.text : block.text.split("\n")
    .filter((line) => !/\bsystemctl\b/.test(line))
    .map((line) => {
      const scp = line.match(/^scp (\S+) \S+:\S*(\s+#.*)?$/);
      if (scp) return `standin ${scp[1]} && cp ${scp[1]} .`;
      const tee = line.match(/\| sudo tee (\S+)/);
      return tee ? `${line}\nverify ${tee[1]}` : line;
    }).join("\n");
  return `echo ${shq(`### ${block.where}`)}\n${body}\n`;
}

/** Every block of both READMEs: README.md's, and the one `npm run new` writes. */
function allBlocks(): { readme: Block[]; project: Block[] } {
  return {
    readme: blocks(Deno.readTextFileSync(`${ROOT}README.md`), "README.md"),
    project: blocks(projectReadme("myd"), "myd/README.md"),
  };
}

Deno.test("every shell block of README.md and of a new project's README is run by this test or says why not, and its TypeScript passes deno lint and deno check", async () => {
  const { readme, project } = allBlocks();
  for (const block of [...readme, ...project]) {
    if (block.mode === "skip") {
      assert.ok(SHELL.has(block.lang), `${block.where}: only shell is run`);
      assert.ok(block.reason!.trim().length > 10, `${block.where}: why not?`);
    }
  }
  const run = (bs: Block[]) =>
    bs.filter((b) => SHELL.has(b.lang) && b.mode !== "skip").length;
  assert.ok(run(readme) >= 4, "README.md: its blocks run");
  assert.ok(run(project) >= 2, "the project's README: its blocks run");
  // Nothing that only a global deno would run.
  for (const block of [...readme, ...project]) {
    if (SHELL.has(block.lang)) {
      assert.doesNotMatch(block.text, /^deno /m, block.where);
    }
  }

  const typescript = readme.filter((b) => b.lang === "ts");
  assert.ok(typescript.length > 0);
  // Beside mod.ts, which the examples import as "./mod.ts".
  const files = typescript.map((b, i) => {
    const file = `${ROOT}.readme_block_${Deno.pid}_${i}.ts`;
    Deno.writeTextFileSync(file, b.text + "\n");
    return file;
  });
  try {
    for (const command of ["lint", "check"]) {
      const r = await sh(
        `${shq(Deno.execPath())} ${command} ${files.map(shq).join(" ")}`,
        { cwd: ROOT, timeout: 120 },
      );
      assert.equal(r.code, 0, `deno ${command}:\n${r.stdout}${r.stderr}`);
    }
  } finally {
    for (const file of files) Deno.removeSync(file);
  }
});

/**
 * The READMEs' prose: "`npm run dev` runs it in the foreground (Ctrl-C stops
 * it)". Ctrl-C signals the whole foreground job; npm itself then exits 130.
 */
const DEV = `echo "### npm run dev, then Ctrl-C"
set -m
npm run dev >dev.log 2>&1 &
for i in $(seq 300); do grep -q Running dev.log && break; sleep 0.1; done
kill -INT -- -$!
wait $! || true
set +m
cat dev.log
`;

/** A directory of programs put first on the PATH of the blocks. */
function shims(dir: string, realNpm: string): void {
  Deno.mkdirSync(dir);
  const write = (name: string, text: string) => {
    Deno.writeTextFileSync(`${dir}/${name}`, text, { mode: 0o755 });
  };
  // The template's installed dependencies stand in for `npm ci` (the
  // registry is slow and may be out of reach); the rest is npm's.
  write(
    "npm",
    `#!/bin/sh
if [ "$1" = ci ]; then
  [ -e node_modules ] || ln -s ${shq(`${ROOT}node_modules`)} node_modules
  echo "npm ci: the template's node_modules stand in"
  exit 0
fi
exec ${shq(realNpm)} "$@"
`,
  );
  // The blocks run as root already.
  write("sudo", `#!/bin/sh\nexec "$@"\n`);
}

/**
 * What runs around the blocks inside the namespaces: a private loopback,
 * `/run`, `/var/log`, `/usr/local/bin` and a copy of `/etc`; a stand-in for
 * a compiled program; a check of the units written. Whatever the blocks
 * leave running is killed by its pidfile, and the rest when the namespace's
 * first process (this shell) exits.
 */
function prelude(etc: string): string {
  return `set -eo pipefail
ip link set lo up
for dir in /run /var/log /usr/local/bin; do
  mount -t tmpfs -o mode=0755 tmpfs "$dir"
done
cp -a /etc ${shq(etc)}
mount --bind ${shq(etc)} /etc
trap 'for f in /run/*.pid; do [ -f "$f" ] && kill -9 "$(cat "$f")" 2>/dev/null; done; true' EXIT
# What "npm run compile" would build: this project's daemon behind one name.
standin() {
  mkdir -p "$(dirname "$1")"
  printf '#!/bin/sh\\nexec %s run -A %s "$@"\\n' ${
    shq(shq(Deno.execPath()))
  } "'$PWD/daemon.ts'" >"$1"
  chmod 0755 "$1"
}
verify() {
  out=$(systemd-analyze verify "$1" 2>&1) || { echo "$out"; return 1; }
  if [ -n "$out" ]; then echo "$out"; return 1; fi
  echo "verified $1"
}
`;
}

Deno.test({
  ...asRoot(
    "README.md's shell blocks, then a new project's README's, run as written and in order on a fresh machine",
  ),
  fn: () =>
    withScratch(async (s) => {
      const { readme, project } = allBlocks();
      const runnable = (bs: Block[]) =>
        bs.filter((b) => SHELL.has(b.lang) && b.mode !== "skip");
      // This checkout, as a reader's fresh clone (node_modules apart).
      const template = `${s.dir}/denod`;
      Deno.mkdirSync(template);
      const copy = await sh(
        `tar -C ${
          shq(ROOT)
        } --exclude=./node_modules --exclude=./dist --exclude=./.git --exclude='./.readme_block_*' -cf - . | tar -C ${
          shq(template)
        } -xf -`,
      );
      assert.equal(copy.code, 0, copy.stderr);
      const found = await sh("command -v npm node");
      assert.equal(found.code, 0, "npm and node are on the PATH");
      const [npm, node] = found.stdout.trim().split("\n");
      shims(`${s.dir}/bin`, npm);
      // No global deno: only what npm brings.
      const path = [
        `${s.dir}/bin`,
        "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        node.slice(0, node.lastIndexOf("/")),
      ].join(":");

      /** Run blocks in one shell from `cwd`, in fresh namespaces. */
      const phase = async (name: string, cwd: string, bs: Block[]) => {
        const file = `${s.dir}/${name}.sh`;
        Deno.writeTextFileSync(
          file,
          `${prelude(`${s.dir}/etc-${name}`)}cd ${shq(cwd)}\n${
            name === "project" ? `standin dist/myd-${Deno.build.target}\n` : ""
          }${bs.map(script).join("")}${
            name === "project" ? DEV : ""
          }echo "### done"\n`,
        );
        const r = await sh(
          `unshare --net --mount --pid --fork --mount-proc bash ${shq(file)}`,
          { env: { PATH: path, NO_COLOR: "1" }, timeout: 90 },
        );
        const out = r.stdout + r.stderr;
        assert.equal(
          r.code,
          0,
          `failed in ${out.match(/### (\S+)\n(?![^]*### )/)?.[1]}:\n${out}`,
        );
        assert.match(r.stdout, /### done\n$/, out);
        return r.stdout;
      };

      const first = await phase("readme", template, runnable(readme));
      assert.match(first, /denod-example started \(pid \d+\)/);
      assert.match(first, /"version":"0\.1\.0"/, "curl reached the daemon");
      assert.match(first, /denod-example reloaded/);
      assert.match(first, /myd started \(pid \d+\)/);
      assert.match(first, /verified \/etc\/systemd\/system\/myd\.service/);
      assert.match(first, /myd started \(pid \d+, supervised by pid \d+\)/);

      // The tour made ../myd, next to the template, as a git repository.
      const made = `${s.dir}/myd`;
      assert.ok(Deno.statSync(`${made}/.git`).isDirectory);
      const written = blocks(
        Deno.readTextFileSync(`${made}/README.md`),
        "myd/README.md",
      );
      assert.deepEqual(
        written.map((b) => b.text),
        project.map((b) => b.text),
      );
      const second = await phase("project", made, runnable(written));
      assert.match(second, /myd started \(pid \d+\)/);
      assert.match(second, /myd reloaded/);
      assert.match(second, /Usage: myd <command>/);
      assert.match(second, /verified \/etc\/systemd\/system\/myd\.service/);
      assert.match(second, /myd: Stopped \(SIGINT, exit 0/);
    }),
});
