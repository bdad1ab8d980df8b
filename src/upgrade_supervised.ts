/**
 * `upgrade` under the supervisor of `start --restart`.
 *
 * @module
 */
import type { Libc } from "../ffi/mod.ts";
import { DaemonError } from "./errors.ts";
import type { CoreOptions } from "./options.ts";
import type { Pinned } from "./process.ts";
import type { StartOptions } from "./start.ts";
import type { LaunchRecord } from "./state.ts";
import type { UpgradeResult } from "./upgrade.ts";

/** Have the supervisor start the new generation, then stop the old one. */
export function upgradeSupervised(
  _libc: Libc,
  _core: CoreOptions & { pidfile: string },
  _options: StartOptions & { program: string[] },
  _record: LaunchRecord,
  _supervisor: Pinned,
): Promise<UpgradeResult> {
  return Promise.reject(
    new DaemonError("Upgrading a supervised daemon is not supported yet"),
  );
}
