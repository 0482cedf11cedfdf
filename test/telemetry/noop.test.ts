import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ConfigError } from "../../src/errors.js";
import { createTelemetry } from "../../src/telemetry/azure-monitor.js";
import { startIngestionEndpoint, type IngestionEndpoint } from "../support/ingestion-endpoint.js";

describe("telemetry without a connection string", () => {
  let endpoint: IngestionEndpoint;

  beforeAll(async () => {
    endpoint = await startIngestionEndpoint();
    // The SDK would pick this up by itself; the sink must only follow the settings it is given.
    process.env.APPLICATIONINSIGHTS_CONNECTION_STRING = endpoint.connectionString;
  });

  afterAll(async () => {
    delete process.env.APPLICATIONINSIGHTS_CONNECTION_STRING;
    await endpoint.close();
  });

  it("accepts every event, flushes and shuts down without sending anything", async () => {
    for (const connectionString of [undefined, "", "   "]) {
      const telemetry = createTelemetry({ connectionString });
      expect(telemetry.enabled).toBe(false);
      telemetry.syncCompleted({
        registry: "r",
        dryRun: false,
        adds: 1,
        removes: 0,
        rulesUsed: 1,
        ruleLimit: 100,
        extraAddresses: 0,
        tagChangeNumbers: "",
        sourceFile: "",
        durationMs: 1,
        trigger: "cli",
      });
      telemetry.syncFailed({
        registry: "r",
        dryRun: false,
        errorType: "X",
        message: "m",
        durationMs: 1,
        trigger: "cli",
      });
      telemetry.guardTripped({ registry: "r", dryRun: false, guard: "budget", message: "m", trigger: "cli" });
      telemetry.driftDetected({ registry: "r", missingOwnedRules: ["1.2.3.4/32"], trigger: "cli" });
      await telemetry.flush();
      await telemetry.shutdown();
    }
    expect(endpoint.requests).toEqual([]);
  });

  it("refuses a malformed connection string with a config error that does not echo it", () => {
    const bad = "InstrumentationKey=not-a-guid;IngestionEndpoint=https://127.0.0.1:1/";
    let caught: unknown;
    try {
      createTelemetry({ connectionString: bad });
    } catch (error) {
      caught = error;
    }
    expect(caught).toBeInstanceOf(ConfigError);
    expect((caught as ConfigError).message).toContain("APPLICATIONINSIGHTS_CONNECTION_STRING");
    expect((caught as ConfigError).message).not.toContain("not-a-guid");
    expect(endpoint.requests).toEqual([]);
  });
});
