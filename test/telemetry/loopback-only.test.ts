import type { AccessToken, TokenCredential } from "@azure/identity";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createTelemetry } from "../../src/telemetry/azure-monitor.js";
import { EVENT_NAMES, METRIC_NAMES } from "../../src/telemetry/types.js";
import { startIngestionEndpoint, type IngestionEndpoint } from "../support/ingestion-endpoint.js";
import { recordOutboundConnections, type ConnectionRecorder } from "../support/outbound-connections.js";

// The sink must reach the connection string's ingestion endpoint and nothing else: no instance
// metadata service (169.254.169.254, which the distro's VM resource detector and the exporter's
// statsbeat both call) and no statsbeat ingestion. Options are the production defaults, except
// offline storage, which would write envelopes to a temp folder.

const credential: TokenCredential = {
  getToken: (): Promise<AccessToken> => Promise.resolve({ token: "t", expiresOnTimestamp: Date.now() + 3_600_000 }),
};

describe("telemetry network use", () => {
  let endpoint: IngestionEndpoint;
  let recorder: ConnectionRecorder;

  beforeAll(async () => {
    endpoint = await startIngestionEndpoint();
    recorder = recordOutboundConnections();
  });

  afterAll(async () => {
    recorder.restore();
    await endpoint.close();
  });

  it("connects only to the loopback ingestion endpoint while a sink is created, used, flushed and shut down", async () => {
    const telemetry = createTelemetry({
      connectionString: endpoint.connectionString,
      credential,
      offlineStorage: false,
    });
    telemetry.syncCompleted({
      registry: "r",
      dryRun: false,
      adds: 1,
      removes: 1,
      rulesUsed: 10,
      ruleLimit: 100,
      extraAddresses: 0,
      tagChangeNumbers: "AzureContainerRegistry.EastUS=1",
      sourceFile: "s",
      durationMs: 1,
      trigger: "timer",
    });
    telemetry.syncFailed({
      registry: "r",
      dryRun: false,
      errorType: "X",
      message: "m",
      durationMs: 1,
      trigger: "timer",
    });
    telemetry.guardTripped({ registry: "r", dryRun: false, guard: "budget", message: "m", trigger: "timer" });
    telemetry.driftDetected({ registry: "r", missingOwnedRules: ["1.2.3.0/24"], trigger: "timer" });
    await telemetry.flush();
    telemetry.syncFailed({
      registry: "r",
      dryRun: false,
      errorType: "Y",
      message: "m",
      durationMs: 1,
      trigger: "timer",
    });
    await telemetry.shutdown();

    const port = Number(new URL(endpoint.url).port);
    expect(recorder.nonLoopback()).toEqual([]);
    expect(recorder.connections.length).toBeGreaterThan(0);
    expect(recorder.connections.every((c) => c.host === "127.0.0.1" && c.port === port)).toBe(true);
    // The sink really worked through those connections.
    expect(
      endpoint
        .events()
        .map((e) => e.name)
        .sort(),
    ).toEqual(
      [
        EVENT_NAMES.completed,
        EVENT_NAMES.driftDetected,
        EVENT_NAMES.failed,
        EVENT_NAMES.failed,
        EVENT_NAMES.guardTripped,
      ].sort(),
    );
    expect(endpoint.metrics(METRIC_NAMES.changes).map((m) => m.value)).toEqual([2]);
  });
});
