/**
 * Unix datagram sockets: sending one datagram (sd_notify, syslog), binding
 * a socket and receiving on it.
 *
 * @module
 */
import type { Libc } from "../types.ts";
import { type Core, O_CLOEXEC } from "./_core.ts";
import { waitReadable } from "./_poll.ts";

const AF_UNIX = 1;
const SOCK_DGRAM = 2;
const SOCK_CLOEXEC = O_CLOEXEC;
const MSG_NOSIGNAL = 0x4000;
const MSG_DONTWAIT = 0x40;
/** `struct sockaddr_un`: a 2-byte family, then 108 bytes of path. */
const SUN_PATH_MAX = 108;

const encoder = new TextEncoder();

/** The functions of {@linkcode Libc} on Unix datagram sockets. */
export type Sockets = Pick<
  Libc,
  | "sendDatagram"
  | "bindDatagram"
  | "receiveDatagram"
  | "tcpListenerPort"
  | "attachReuseportFilter"
>;

const SOL_SOCKET = 1;
const SO_ACCEPTCONN = 30;
const SO_ATTACH_REUSEPORT_CBPF = 51;
const AF_INET = 2;
const AF_INET6 = 10;

/**
 * The Linux socket functions.
 *
 * @param c The shared core.
 * @returns Them, for {@linkcode Libc}; they keep one sending socket per address.
 */
export function sockets(c: Core): Sockets {
  /** Datagram sockets kept for sendDatagram, by address. */
  const senders = new Map<string, number>();
  return {
    sendDatagram(address, data, opts) {
      const [addr, len] = unixAddress(address);
      // One unconnected socket per address, kept: sendto names the address
      // each time, so a restarted listener is reached again.
      let fd = senders.get(address);
      if (fd === undefined) {
        fd = datagramSocket(c, address);
        senders.set(address, fd);
      }
      const sock = fd;
      const flags = MSG_NOSIGNAL | (opts?.nonBlocking ? MSG_DONTWAIT : 0);
      const sendto = c.symbol("sendto");
      c.check(
        "sendto",
        address,
        () => sendto(sock, data, BigInt(data.length), flags, addr, len),
      );
    },
    bindDatagram(address) {
      const [addr, len] = unixAddress(address);
      const fd = datagramSocket(c, address);
      try {
        c.check("bind", address, () => c.symbol("bind")(fd, addr, len));
      } catch (err) {
        c.symbol("close")(fd);
        throw err;
      }
      return fd;
    },
    tcpListenerPort(fd) {
      const value = new Int32Array(1);
      const len = new Uint32Array([4]);
      const getsockopt = c.symbol("getsockopt");
      if (getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, value, len) !== 0) {
        return null;
      }
      if (value[0] !== 1) return null;
      // sockaddr_in and sockaddr_in6 both carry the port at offset 2.
      const addr = new Uint8Array(128);
      const addrLen = new Uint32Array([addr.length]);
      if (c.symbol("getsockname")(fd, addr, addrLen) !== 0) return null;
      const view = new DataView(addr.buffer);
      const family = view.getUint16(0, true);
      if (family !== AF_INET && family !== AF_INET6) return null;
      return view.getUint16(2, false);
    },
    attachReuseportFilter(fd, program) {
      // struct sock_filter: u16 code, u8 jt, u8 jf, u32 k.
      const filter = new Uint8Array(8 * program.length);
      const f = new DataView(filter.buffer);
      program.forEach(({ code, jt, jf, k }, i) => {
        f.setUint16(i * 8, code, true);
        f.setUint8(i * 8 + 2, jt);
        f.setUint8(i * 8 + 3, jf);
        f.setUint32(i * 8 + 4, k, true);
      });
      // struct sock_fprog: u16 len, then (aligned) the filter's address;
      // `filter` stays referenced until setsockopt returns.
      const fprog = new Uint8Array(16);
      const p = new DataView(fprog.buffer);
      p.setUint16(0, program.length, true);
      p.setBigUint64(
        8,
        BigInt(Deno.UnsafePointer.value(Deno.UnsafePointer.of(filter))),
        true,
      );
      c.check(
        "setsockopt",
        `fd ${fd}`,
        () =>
          c.symbol("setsockopt")(
            fd,
            SOL_SOCKET,
            SO_ATTACH_REUSEPORT_CBPF,
            fprog,
            fprog.length,
          ),
      );
      void filter.length;
    },
    async receiveDatagram(fd, timeoutMs) {
      if (!(await waitReadable(c, fd, timeoutMs))) return null;
      const buf = new Uint8Array(65536);
      const n = Number(
        await c.symbol("recv_async")(fd, buf, BigInt(buf.length), MSG_DONTWAIT),
      );
      return n < 0 ? null : buf.slice(0, n);
    },
  };
}

/** A `sockaddr_un` for a path or an `@abstract` name, and its length. */
function unixAddress(address: string): [Uint8Array, number] {
  const abstract = address.startsWith("@");
  const name = encoder.encode(abstract ? address.slice(1) : address);
  const len = 2 + (abstract ? 1 + name.length : name.length + 1);
  if (name.length === 0 || name.includes(0) || len > 2 + SUN_PATH_MAX) {
    throw new TypeError(
      `Invalid Unix socket address ${JSON.stringify(address)}`,
    );
  }
  const buf = new Uint8Array(2 + SUN_PATH_MAX);
  new DataView(buf.buffer).setUint16(0, AF_UNIX, true);
  buf.set(name, abstract ? 3 : 2);
  return [buf, len];
}

/** A new `AF_UNIX` datagram socket, close-on-exec. */
function datagramSocket(c: Core, address: string): number {
  return c.check(
    "socket",
    address,
    () => c.symbol("socket")(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0),
  );
}
