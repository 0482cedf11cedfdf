import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createTelemetry } from "../../src/telemetry/azure-monitor.js";
import { EVENT_NAMES, type GuardTrippedEvent } from "../../src/telemetry/types.js";
import { startIngestionEndpoint, type IngestionEndpoint } from "../support/ingestion-endpoint.js";

// Each sink owns its exporters and providers (nothing is registered process-wide), so sinks in
// one process are independent: their own resource, their own lifetime.

const guard = (registry: string): GuardTrippedEvent => ({
  registry,
  dryRun: true,
  guard: "budget",
  message: "over budget",
  trigger: "cli",
});
const quiet = { offlineStorage: false } as const;
const NO_STATSBEAT_ENV = "APPLICATION_INSIGHTS_NO_STATSBEAT";

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

  it("sends each sink's events to its own connection string while both run", async () => {
    first.clear();
    second.clear();
    const a = createTelemetry({ connectionString: first.connectionString, ...quiet });
    const b = createTelemetry({ connectionString: second.connectionString, ...quiet });
    a.guardTripped(guard("a"));
    b.guardTripped(guard("b"));
    await Promise.all([a.flush(), b.flush()]);
    await Promise.all([a.shutdown(), b.shutdown()]);
    expect(first.events(EVENT_NAMES.guardTripped).map((e) => e.properties.registry)).toEqual(["a"]);
    expect(second.events(EVENT_NAMES.guardTripped).map((e) => e.properties.registry)).toEqual(["b"]);
  });

  it("keeps one sink sending after another sink with the same settings shut down", async () => {
    first.clear();
    const a = createTelemetry({ connectionString: first.connectionString, ...quiet });
    const b = createTelemetry({ connectionString: first.connectionString, ...quiet });
    a.guardTripped(guard("a"));
    await a.shutdown();
    b.guardTripped(guard("b"));
    await b.flush();
    await b.shutdown();
    expect(first.events(EVENT_NAMES.guardTripped).map((e) => e.properties.registry)).toEqual(["a", "b"]);
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

  it("leaves the exporter's statsbeat switch in the environment as it found it", async () => {
    const before = process.env[NO_STATSBEAT_ENV];
    try {
      Reflect.deleteProperty(process.env, NO_STATSBEAT_ENV);
      const unset = createTelemetry({ connectionString: first.connectionString, ...quiet });
      expect(process.env[NO_STATSBEAT_ENV]).toBeUndefined();
      process.env[NO_STATSBEAT_ENV] = "operator-value";
      const preset = createTelemetry({ connectionString: first.connectionString, ...quiet });
      expect(process.env[NO_STATSBEAT_ENV]).toBe("operator-value");
      await Promise.all([unset.shutdown(), preset.shutdown()]);
    } finally {
      if (before === undefined) Reflect.deleteProperty(process.env, NO_STATSBEAT_ENV);
      else process.env[NO_STATSBEAT_ENV] = before;
    }
  });
});
