/**
 * The module graph has no cycle, type-only imports and dynamic imports
 * included: every module can be read, tested and loaded on its own.
 */
import assert from "node:assert/strict";

type Edge = { specifier: string };
type Dep = { code?: Edge; type?: Edge };

/** The project's own modules and what each imports, as `deno info` sees it. */
async function graph(roots: string[]): Promise<Map<string, string[]>> {
  const edges = new Map<string, string[]>();
  const root = new URL("../", import.meta.url).href;
  for (const entry of roots) {
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["info", "--json", new URL(entry, root).pathname],
      env: { NO_COLOR: "1" },
    }).output();
    assert.ok(out.success, new TextDecoder().decode(out.stderr));
    const info = JSON.parse(new TextDecoder().decode(out.stdout)) as {
      modules: { specifier: string; dependencies?: Dep[] }[];
    };
    for (const m of info.modules) {
      if (
        !m.specifier.startsWith(root) ||
        m.specifier.includes("/node_modules/") ||
        m.specifier.includes("/third_party/")
      ) continue;
      const to = (m.dependencies ?? []).flatMap((d) =>
        [d.code?.specifier, d.type?.specifier].filter((s): s is string =>
          s !== undefined && s.startsWith(root) &&
          !s.includes("/node_modules/") &&
          !s.includes("/third_party/")
        )
      );
      edges.set(m.specifier, [...new Set(to)]);
    }
  }
  return edges;
}

/** One cycle in the graph, as a list of modules, or `null`. */
function findCycle(edges: Map<string, string[]>): string[] | null {
  const state = new Map<string, "open" | "done">();
  const path: string[] = [];
  const visit = (node: string): string[] | null => {
    if (state.get(node) === "done") return null;
    if (state.get(node) === "open") return path.slice(path.indexOf(node));
    state.set(node, "open");
    path.push(node);
    for (const next of edges.get(node) ?? []) {
      const found = visit(next);
      if (found) return found;
    }
    path.pop();
    state.set(node, "done");
    return null;
  };
  for (const node of edges.keys()) {
    const found = visit(node);
    if (found) return found;
  }
  return null;
}

Deno.test("findCycle() finds a cycle through a type-only edge, and none in a tree", () => {
  assert.deepEqual(
    findCycle(new Map([["a", ["b"]], ["b", ["c"]], ["c", ["a"]]])),
    ["a", "b", "c"],
  );
  assert.equal(findCycle(new Map([["a", ["b", "c"]], ["b", ["c"]]])), null);
});

Deno.test("no import cycles among the project's modules, type-only and dynamic imports included", async () => {
  const edges = await graph(["mod.ts", "daemon.ts"]);
  assert.ok(edges.size > 20, `only ${edges.size} modules seen`);
  for (const file of ["src/serve.ts", "src/supervise.ts", "src/parse.ts"]) {
    assert.ok(
      [...edges.keys()].some((s) => s.endsWith(file)),
      `${file} is in the graph`,
    );
  }
  const cycle = findCycle(edges);
  const short = (s: string) => s.slice(s.lastIndexOf("/src/") + 1);
  assert.equal(cycle, null, `cycle: ${cycle?.map(short).join(" → ")}`);
});
