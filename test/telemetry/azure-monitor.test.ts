import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createTelemetry } from "../../src/telemetry/azure-monitor.js";
import { EVENT_NAMES, METRIC_NAMES, type Telemetry } from "../../src/telemetry/types.js";
import {
  startIngestionEndpoint,
  TEST_INSTRUMENTATION_KEY,
  type IngestionEndpoint,
} from "../support/ingestion-endpoint.js";

// One sink driven through a whole story; the assertions read what a real Application Insights
// ingestion endpoint would have received.

const REGISTRY =
  "/subscriptions/11111111-1111-1111-1111-111111111111/resourceGroups/rg/providers/Microsoft.ContainerRegistry/registries/myreg";
const OTHER =
  "/subscriptions/11111111-1111-1111-1111-111111111111/resourceGroups/rg2/providers/Microsoft.ContainerRegistry/registries/other";

describe("Application Insights telemetry through the Azure Monitor exporter", () => {
  let endpoint: IngestionEndpoint;
  let telemetry: Telemetry;

  beforeAll(async () => {
    endpoint = await startIngestionEndpoint();
    telemetry = createTelemetry({ connectionString: endpoint.connectionString, offlineStorage: false });
    telemetry.syncCompleted({
      registry: REGISTRY,
      dryRun: false,
      adds: 3,
      removes: 1,
      rulesUsed: 42,
      ruleLimit: 100,
      extraAddresses: 512,
      tagChangeNumbers: "AzureContainerRegistry.EastUS=42;AzureContainerRegistry.WestEurope=17",
      sourceFile:
        "https://download.microsoft.com/download/7/1/D/71D86715-5596-4529-9B13-DA13A5DE5B63/ServiceTags_Public_20251020.json",
      durationMs: 1234,
      trigger: "timer",
    });
    telemetry.syncCompleted({
      registry: OTHER,
      dryRun: true,
      adds: 0,
      removes: 0,
      rulesUsed: 7,
      ruleLimit: 200,
      extraAddresses: 0,
      tagChangeNumbers: "AzureContainerRegistry.ChinaEast2=3",
      sourceFile: "/tmp/tags.json",
      durationMs: 80,
      trigger: "http",
    });
    telemetry.syncFailed({
      registry: OTHER,
      dryRun: false,
      errorType: "RegistryAccessDenied",
      message:
        "ARM refused: Authorization: Bearer eyJhbGciOiJSUzI1NiJ9.eyJhdWQiOiJhcm0ifQ.c2lnbmF0dXJl while reading https://x.blob.core.windows.net/c/b?sv=2024&sig=abcDEF%2B123",
      durationMs: 250,
      trigger: "timer",
    });
    telemetry.guardTripped({
      registry: REGISTRY,
      dryRun: false,
      guard: "mass-removal",
      message: "The plan removes 30 of 40 owned rules (limit 25 %).",
      trigger: "timer",
    });
    telemetry.driftDetected({
      registry: REGISTRY,
      missingOwnedRules: ["20.42.66.0/24", "52.168.0.0/16"],
      trigger: "timer",
    });
    await telemetry.flush();
  });

  afterAll(async () => {
    await telemetry.shutdown();
    await endpoint.close();
  });

  it("posts envelopes to /v2.1/track with the connection string's instrumentation key", () => {
    expect(endpoint.requests.length).toBeGreaterThan(0);
    expect(endpoint.requests.every((r) => r.path === "/v2.1/track")).toBe(true);
    expect(new Set(endpoint.envelopes.map((e) => e.iKey))).toEqual(new Set([TEST_INSTRUMENTATION_KEY]));
  });

  it("tags every row with the service's role name when none is configured and it runs outside Azure", () => {
    expect(new Set(endpoint.envelopes.map((e) => e.tags?.["ai.cloud.role"]))).toEqual(new Set(["acr-allowlist-sync"]));
  });

  it("sends one customEvents row per event, with the event names the alerts query", () => {
    expect(
      endpoint
        .events()
        .map((e) => e.name)
        .sort(),
    ).toEqual(
      [
        EVENT_NAMES.completed,
        EVENT_NAMES.completed,
        EVENT_NAMES.driftDetected,
        EVENT_NAMES.failed,
        EVENT_NAMES.guardTripped,
      ].sort(),
    );
  });

  it("sends the completion properties, numbers and booleans as strings", () => {
    const [event] = endpoint.events(EVENT_NAMES.completed).filter((e) => e.properties.registry === REGISTRY);
    expect(event?.properties).toEqual({
      registry: REGISTRY,
      dryRun: "false",
      adds: "3",
      removes: "1",
      rulesUsed: "42",
      ruleLimit: "100",
      extraAddresses: "512",
      tagChangeNumbers: "AzureContainerRegistry.EastUS=42;AzureContainerRegistry.WestEurope=17",
      sourceFile:
        "https://download.microsoft.com/download/7/1/D/71D86715-5596-4529-9B13-DA13A5DE5B63/ServiceTags_Public_20251020.json",
      durationMs: "1234",
      trigger: "timer",
    });
  });

  it("sends the failure with its error type and a message scrubbed of tokens and SAS signatures", () => {
    const [event] = endpoint.events(EVENT_NAMES.failed);
    expect(event?.properties).toMatchObject({
      registry: OTHER,
      dryRun: "false",
      errorType: "RegistryAccessDenied",
      durationMs: "250",
      trigger: "timer",
    });
    const message = event?.properties.message ?? "";
    expect(message).toContain("ARM refused");
    expect(message).not.toContain("eyJ");
    expect(message).not.toContain("abcDEF");
    expect(message).toContain("sig=[REDACTED]");
  });

  it("sends the guard trip with the guard's name and message", () => {
    expect(endpoint.events(EVENT_NAMES.guardTripped).map((e) => e.properties)).toEqual([
      {
        registry: REGISTRY,
        dryRun: "false",
        guard: "mass-removal",
        message: "The plan removes 30 of 40 owned rules (limit 25 %).",
        trigger: "timer",
      },
    ]);
  });

  it("sends drift with the missing owned rules as a comma list and their count", () => {
    expect(endpoint.events(EVENT_NAMES.driftDetected).map((e) => e.properties)).toEqual([
      {
        registry: REGISTRY,
        missingOwnedRules: "20.42.66.0/24,52.168.0.0/16",
        missingOwnedRuleCount: "2",
        trigger: "timer",
      },
    ]);
  });

  it("records the rule gauges per registry and dry-run flag", () => {
    const point = (name: string, registry: string) =>
      endpoint.metrics(name).filter((m) => m.properties.registry === registry);
    expect(point(METRIC_NAMES.rulesUsed, REGISTRY).map((m) => [m.value, m.properties.dryRun])).toEqual([[42, "false"]]);
    expect(point(METRIC_NAMES.rulesLimit, REGISTRY).map((m) => m.value)).toEqual([100]);
    expect(point(METRIC_NAMES.extraAddresses, REGISTRY).map((m) => m.value)).toEqual([512]);
    expect(point(METRIC_NAMES.rulesUsed, OTHER).map((m) => [m.value, m.properties.dryRun])).toEqual([[7, "true"]]);
    expect(point(METRIC_NAMES.rulesLimit, OTHER).map((m) => m.value)).toEqual([200]);
  });

  it("counts changes as adds plus removes, zero included", () => {
    const changes = endpoint.metrics(METRIC_NAMES.changes);
    expect(changes.map((m) => [m.properties.registry, m.value]).sort()).toEqual(
      [
        [OTHER, 0],
        [REGISTRY, 4],
      ].sort(),
    );
  });

  it("sends the next invocation's points only, not the previous run's again", async () => {
    endpoint.clear();
    telemetry.syncCompleted({
      registry: REGISTRY,
      dryRun: false,
      adds: 0,
      removes: 2,
      rulesUsed: 40,
      ruleLimit: 100,
      extraAddresses: 512,
      tagChangeNumbers: "AzureContainerRegistry.EastUS=43",
      sourceFile: "s",
      durationMs: 1,
      trigger: "timer",
    });
    await telemetry.flush();
    expect(endpoint.metrics(METRIC_NAMES.rulesUsed).map((m) => [m.properties.registry, m.value])).toEqual([
      [REGISTRY, 40],
    ]);
    expect(endpoint.metrics(METRIC_NAMES.changes).map((m) => m.value)).toEqual([2]);
    expect(endpoint.events().map((e) => e.name)).toEqual([EVENT_NAMES.completed]);
  });
});
