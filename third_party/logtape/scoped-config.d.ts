import { LogLevel } from "./level.d.ts";
import { FilterLike } from "./filter.d.ts";
import { Sink } from "./sink.d.ts";

//#region src/scoped-config.d.ts

interface ScopedConfigLike<TSinkId extends string, TFilterId extends string> {
  readonly sinks: Record<TSinkId, Sink>;
  readonly filters?: Record<TFilterId, FilterLike>;
  readonly loggers: readonly ScopedLoggerConfigLike<TSinkId, TFilterId>[];
}
interface ScopedLoggerConfigLike<TSinkId extends string, TFilterId extends string> {
  readonly category: string | readonly string[];
  readonly sinks?: readonly TSinkId[];
  readonly parentSinks?: "inherit" | "override" | "forward";
  readonly filters?: readonly TFilterId[];
  readonly lowestLevel?: LogLevel | null;
  readonly captureSourceLocation?: boolean;
}
//#endregion
export { ScopedConfigLike };
