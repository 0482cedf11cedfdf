import { describe, expect, it } from "vitest";
import {
  completedMetricPoints,
  completedRecord,
  driftDetectedRecord,
  failedRecord,
  MAX_PROPERTY_LENGTH,
} from "../../src/telemetry/records.js";
import { EVENT_NAMES, METRIC_NAMES, type SyncCompletedEvent } from "../../src/telemetry/types.js";

const completed: SyncCompletedEvent = {
  registry: "myreg",
  dryRun: true,
  adds: 2,
  removes: 5,
  rulesUsed: 60,
  ruleLimit: 100,
  extraAddresses: 256,
  tagChangeNumbers: "AzureContainerRegistry.EastUS=42",
  sourceFile: "https://acct.blob.core.windows.net/c/tags.json?sv=1&sig=secret",
  durationMs: Number.NaN,
  trigger: "cli",
};

describe("telemetry records", () => {
  it("names the completion event and keeps numbers and booleans typed for the exporter", () => {
    const record = completedRecord(completed);
    expect(record.name).toBe(EVENT_NAMES.completed);
    expect(record.properties.adds).toBe(2);
    expect(record.properties.dryRun).toBe(true);
  });

  it("scrubs string properties, SAS signatures in the source included", () => {
    expect(completedRecord(completed).properties.sourceFile).toBe(
      "https://acct.blob.core.windows.net/c/tags.json?sv=1&sig=[REDACTED]",
    );
  });

  it("sends 0 for a non-finite number so KQL toint() keeps working", () => {
    expect(completedRecord(completed).properties.durationMs).toBe(0);
  });

  it("caps long messages below Application Insights' dimension limit", () => {
    const record = failedRecord({
      registry: "r",
      dryRun: false,
      errorType: "X",
      message: "m".repeat(20_000),
      durationMs: 1,
      trigger: "timer",
    });
    expect(String(record.properties.message).length).toBe(MAX_PROPERTY_LENGTH);
    expect(record.severity).toBe("error");
  });

  it("turns the missing rules into a comma list with a count", () => {
    const record = driftDetectedRecord({
      registry: "r",
      missingOwnedRules: ["1.2.3.0/24", "5.6.7.8/32"],
      trigger: "timer",
    });
    expect(record.properties).toEqual({
      registry: "r",
      missingOwnedRules: "1.2.3.0/24,5.6.7.8/32",
      missingOwnedRuleCount: 2,
      trigger: "timer",
    });
  });

  it("emits the four metrics with registry and dryRun dimensions, changes as adds plus removes", () => {
    expect(completedMetricPoints(completed)).toEqual([
      { name: METRIC_NAMES.rulesUsed, value: 60, dimensions: { registry: "myreg", dryRun: "true" } },
      { name: METRIC_NAMES.rulesLimit, value: 100, dimensions: { registry: "myreg", dryRun: "true" } },
      { name: METRIC_NAMES.extraAddresses, value: 256, dimensions: { registry: "myreg", dryRun: "true" } },
      { name: METRIC_NAMES.changes, value: 7, dimensions: { registry: "myreg", dryRun: "true" } },
    ]);
  });
});
