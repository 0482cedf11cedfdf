import type { Telemetry } from "./types.js";

/** Accepts everything and sends nothing: the sink when no connection string is configured. */
export function noopTelemetry(): Telemetry {
  return {
    enabled: false,
    syncCompleted: () => undefined,
    syncFailed: () => undefined,
    guardTripped: () => undefined,
    driftDetected: () => undefined,
    syncSkipped: () => undefined,
    registryUntagged: () => undefined,
    fanoutScheduled: () => undefined,
    canaryCompleted: () => undefined,
    flush: () => Promise.resolve(),
    shutdown: () => Promise.resolve(),
  };
}
