/**
 * `nameBindErrors()`: the three listening calls keep their behaviour and
 * types, and a failed bind names where it was aimed.
 */
import assert from "node:assert/strict";
import { nameBindErrors, startupFailure } from "../src/bind.ts";
import { Exit } from "../src/errors.ts";

nameBindErrors();

/** A throwaway self-signed certificate for localhost, for these tests only. */
const CERT = `-----BEGIN CERTIFICATE-----
MIIBfzCCASWgAwIBAgIUPJncjIVJNNM6IILJrJ6+DKpJs1QwCgYIKoZIzj0EAwIw
FDESMBAGA1UEAwwJbG9jYWxob3N0MCAXDTI2MTEyNTIyMzgxNVoYDzIxMjYxMTAx
MjIzODE1WjAUMRIwEAYDVQQDDAlsb2NhbGhvc3QwWTATBgcqhkjOPQIBBggqhkjO
PQMBBwNCAAQjGZ3U5RvY8W8XEu3FrH1OSDopQcDcK+VceNXtYmQ/i3lEAV8xxDv3
CCdpAouqyHVspMWcBikvSQoVEF0QcgGzo1MwUTAdBgNVHQ4EFgQUq/hOvML0QOCC
lQVikpVmPdh5OR8wHwYDVR0jBBgwFoAUq/hOvML0QOCClQVikpVmPdh5OR8wDwYD
VR0TAQH/BAUwAwEB/zAKBggqhkjOPQQDAgNIADBFAiB6n3kk8YqkU7gEVkEVy4E+
3FvsMe9p9cj5gEaEe0vLPgIhAO/UVEJsnBngA3cCXxRSj/4h/10SDWLKsX+nkR8s
ZfId
-----END CERTIFICATE-----
`;
const KEY = `-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQg1Pew9jMgPyjqH7la
bvu6O2sPN1HdxAoNs7phyRY92LKhRANCAAQjGZ3U5RvY8W8XEu3FrH1OSDopQcDc
K+VceNXtYmQ/i3lEAV8xxDv3CCdpAouqyHVspMWcBikvSQoVEF0QcgGz
-----END PRIVATE KEY-----
`;

Deno.test("a failed Deno.listen, Deno.serve or Deno.listenTls names its address and keeps its class", async () => {
  const busy = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = busy.addr.port;
  try {
    const calls: [string, () => unknown][] = [
      ["listen", () => Deno.listen({ hostname: "127.0.0.1", port })],
      ["serve", () =>
        Deno.serve(
          { hostname: "127.0.0.1", port, onListen() {} },
          () => new Response(),
        )],
      [
        "listenTls",
        () =>
          Deno.listenTls({ hostname: "127.0.0.1", port, cert: CERT, key: KEY }),
      ],
    ];
    for (const [what, call] of calls) {
      assert.throws(call, (err: unknown) => {
        assert.ok(err instanceof Deno.errors.AddrInUse, `${what}: ${err}`);
        assert.match(
          (err as Error).message,
          new RegExp(`^Cannot listen on "127\\.0\\.0\\.1:${port}": `),
          what,
        );
        return true;
      });
    }
  } finally {
    busy.close();
  }
  // What succeeds is what Deno returns, unchanged.
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  assert.equal(listener.addr.transport, "tcp");
  listener.close();
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen() {} },
    () => new Response("ok"),
  );
  const res = await fetch(`http://127.0.0.1:${server.addr.port}/`);
  assert.equal(await res.text(), "ok");
  await server.shutdown();
});

Deno.test("a failed bind names an IPv6 address in brackets and a socket by its path", () => {
  const dir = Deno.makeTempDirSync();
  try {
    const path = `${dir}/s.sock`;
    const sock = Deno.listen({ transport: "unix", path });
    try {
      assert.throws(
        () => Deno.listen({ transport: "unix", path }),
        (err: unknown) => {
          assert.match(
            (err as Error).message,
            /^Cannot listen on ".*s\.sock": /,
          );
          return true;
        },
      );
    } finally {
      sock.close();
    }
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
  let v6: Deno.Listener | undefined;
  try {
    v6 = Deno.listen({ hostname: "::1", port: 0 });
  } catch {
    return; // no IPv6 loopback here
  }
  try {
    const port = (v6.addr as Deno.NetAddr).port;
    assert.throws(
      () => Deno.listen({ hostname: "::1", port }),
      (err: unknown) => {
        assert.match(
          (err as Error).message,
          /^Cannot listen on "\[::1\]:\d+": /,
        );
        return true;
      },
    );
  } finally {
    v6.close();
  }
});

Deno.test("startupFailure() makes exit 4 only of a privileged port refused", () => {
  const other = new Error("boom");
  assert.deepEqual(startupFailure(other), { error: other, code: Exit.FAILURE });
  let refused: unknown;
  try {
    Deno.listen({ hostname: "127.0.0.1", port: 1 });
  } catch (err) {
    refused = err;
  }
  if (refused === undefined) return; // privileged here: nothing is refused
  const { error, code } = startupFailure(refused);
  assert.equal(code, Exit.PRIVILEGE);
  assert.match((error as Error).message, /ports below \d+ need privilege/);
});
