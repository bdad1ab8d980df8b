/**
 * Linux signal numbers (the same on x86_64 and aarch64), by name and back.
 *
 * @module
 */

/** Linux signal numbers by name. */
const SIGNALS: Partial<Record<Deno.Signal, number>> = {
  SIGHUP: 1,
  SIGINT: 2,
  SIGQUIT: 3,
  SIGILL: 4,
  SIGTRAP: 5,
  SIGABRT: 6,
  SIGBUS: 7,
  SIGFPE: 8,
  SIGKILL: 9,
  SIGUSR1: 10,
  SIGSEGV: 11,
  SIGUSR2: 12,
  SIGPIPE: 13,
  SIGALRM: 14,
  SIGTERM: 15,
  SIGCHLD: 17,
  SIGCONT: 18,
  SIGSTOP: 19,
  SIGTSTP: 20,
  SIGTTIN: 21,
  SIGTTOU: 22,
  SIGXCPU: 24,
  SIGXFSZ: 25,
  SIGVTALRM: 26,
  SIGPROF: 27,
  SIGWINCH: 28,
  SIGPWR: 30,
  SIGSYS: 31,
};

/** Signal names by number, for reporting how a process ended. */
const SIGNAL_NAMES = new Map(
  Object.entries(SIGNALS).map(([name, n]) => [n, name]),
);

/**
 * The number of a signal.
 *
 * @param signal Its name.
 * @returns Its Linux number.
 * @throws {TypeError} For a signal the table does not hold.
 */
export function signalNumber(signal: Deno.Signal): number {
  const n = SIGNALS[signal];
  if (n === undefined) throw new TypeError(`Unknown signal ${signal}`);
  return n;
}

/**
 * The name of a signal number.
 *
 * @param n The number.
 * @returns Its name, or the number itself as a string when unnamed.
 */
export function signalName(n: number): string {
  return SIGNAL_NAMES.get(n) ?? String(n);
}
