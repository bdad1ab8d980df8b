// The floor of the double spawn for `deno task bench`: a Deno script that
// re-executes itself twice, as `start` does (caller → session leader →
// daemon), and does nothing else: no options, pidfile, logging or libc.
// The daemon serves HTTP on port 0 and prints its pid once it listens; the
// caller passes that line on and exits.
const stage = Deno.env.get("DENO_CHAIN_STAGE");

if (stage === "daemon") {
  Deno.serve({
    hostname: "127.0.0.1",
    port: 0,
    onListen() {
      console.log(Deno.pid);
    },
  }, () => new Response("ok"));
} else {
  const leader = stage === "leader";
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", new URL(import.meta.url).pathname],
    env: { DENO_CHAIN_STAGE: leader ? "daemon" : "leader" },
    stdin: "null",
    // The daemon writes its line straight to the caller's pipe.
    stdout: leader ? "inherit" : "piped",
    stderr: "null",
    // The leader gets a session of its own (setsid), as start's does.
    detached: !leader,
  }).spawn();
  if (leader) {
    child.unref();
  } else {
    const reader = child.stdout.pipeThrough(new TextDecoderStream())
      .getReader();
    let said = "";
    while (!said.includes("\n")) {
      const { value, done } = await reader.read();
      if (done) Deno.exit(1);
      said += value;
    }
    console.log(said.trim());
    Deno.exit(0);
  }
}
