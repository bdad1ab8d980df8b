/**
 * Strings and string vectors as C wants them.
 *
 * @module
 */

const encoder = new TextEncoder();

/**
 * A NUL-terminated copy of `s` for passing as `const char *`.
 *
 * @param s The string; it must not contain a NUL.
 * @returns Its UTF-8 bytes and a final NUL.
 * @throws {TypeError} When `s` contains a NUL byte.
 */
export function cstr(s: string): Uint8Array<ArrayBuffer> {
  if (s.includes("\0")) {
    throw new TypeError(`String contains a NUL byte: ${JSON.stringify(s)}`);
  }
  const bytes = encoder.encode(s);
  const out = new Uint8Array(bytes.length + 1);
  out.set(bytes);
  return out;
}

/**
 * Build a `char *const[]` from strings. The returned `keep` array owns the
 * string buffers: hold it until the call that uses the vector returns.
 *
 * @param strings The strings, in order.
 * @returns The NULL-terminated pointer vector and the buffers it points into.
 */
export function cvector(strings: string[]): {
  vector: BigUint64Array<ArrayBuffer>;
  keep: Uint8Array[];
} {
  const keep = strings.map(cstr);
  const vector = new BigUint64Array(keep.length + 1);
  keep.forEach((buf, i) => {
    vector[i] = BigInt(Deno.UnsafePointer.value(Deno.UnsafePointer.of(buf)));
  });
  return { vector, keep };
}
