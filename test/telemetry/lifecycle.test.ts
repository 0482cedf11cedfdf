import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ConfigError } from "../../src/errors.js";
import { createTelemetry } from "../../src/telemetry/azure-monitor.js";
import { EVENT_NAMES, type GuardTrippedEvent } from "../../src/telemetry/types.js";
import { startIngestionEndpoint, type IngestionEndpoint } from "../support/ingestion-endpoint.js";

// The distro starts one process-wide SDK. These tests run in order in one process and check that
// creation is shared, refused when it would send elsewhere, and restartable after a shutdown.

const guard = (registry: string): GuardTrippedEvent => ({ registry, dryRun: true, guard: "budget", message: "over budget", trigger: "cli" });
const quiet = { sdkStats: false, offlineStorage: false } as const;

describe("telemetry lifecycle in one process", () => {
  let first: IngestionEndpoint;
  let second: IngestionEndpoint;

  beforeAll(async () => {
    first = await startIngestionEndpoint();
    second = await startIngestionEndpoint();
  });

  afterAll(async () => {
    await first.close();
    await second.close();
  });

  it("shares one SDK between sinks created with the same settings, until the last one shuts down", async () => {
    const a = createTelemetry({ connectionString: first.connectionString, ...quiet });
    const b = createTelemetry({ connectionString: first.connectionString, ...quiet });
    a.guardTripped(guard("a"));
    await a.shutdown();
    b.guardTripped(guard("b"));
    await b.flush();
    expect(first.events(EVENT_NAMES.guardTripped).map((e) => e.properties.registry)).toEqual(["a", "b"]);
    await b.shutdown();
  });

  it("refuses a second connection string while the SDK runs for the first", async () => {
    const running = createTelemetry({ connectionString: first.connectionString, ...quiet });
    expect(() => createTelemetry({ connectionString: second.connectionString, ...quiet })).toThrow(ConfigError);
    await running.shutdown();
  });

  it("ignores events and flushes after its own shutdown without throwing", async () => {
    const sink = createTelemetry({ connectionString: first.connectionString, ...quiet });
    await sink.shutdown();
    first.clear();
    sink.guardTripped(guard("late"));
    await sink.flush();
    await sink.shutdown();
    expect(first.events()).toEqual([]);
  });

  it("starts again for another resource after the last sink shut down", async () => {
    first.clear();
    const sink = createTelemetry({ connectionString: second.connectionString, ...quiet });
    sink.guardTripped(guard("restarted"));
    await sink.flush();
    await sink.shutdown();
    expect(second.events(EVENT_NAMES.guardTripped).map((e) => e.properties.registry)).toEqual(["restarted"]);
    expect(first.events()).toEqual([]);
  });
});
