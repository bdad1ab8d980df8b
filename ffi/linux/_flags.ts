/**
 * Linux `open(2)` flag values shared by several concerns, and the ones that
 * differ by architecture.
 *
 * @module
 */

/** Linux values that differ by architecture. */
export const ARCH = {
  x86_64: { O_DIRECTORY: 0o200000, O_NOFOLLOW: 0o400000 },
  aarch64: { O_DIRECTORY: 0o40000, O_NOFOLLOW: 0o100000 },
} as const;

/** Open for reading only. */
export const O_RDONLY = 0;
/** Open for writing only. */
export const O_WRONLY = 0o1;
/** Open for reading and writing. */
export const O_RDWR = 0o2;
/** Create the file when it does not exist. */
export const O_CREAT = 0o100;
/** With `O_CREAT`: fail when the name exists. */
export const O_EXCL = 0o200;
/** Do not make a terminal the controlling one. */
export const O_NOCTTY = 0o400;
/** Write at the end. */
export const O_APPEND = 0o2000;
/** Never block, also not in the open of a FIFO or device. */
export const O_NONBLOCK = 0o4000;
/** Close on exec. */
export const O_CLOEXEC = 0o2000000;
/** A handle for walking and `fstat`, no access to the content. */
export const O_PATH = 0o10000000;
