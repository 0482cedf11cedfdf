import { describe, expect, it } from "vitest";
import { canaryCompletedRecord, canaryMetricPoints } from "../../src/telemetry/records.js";
import { EVENT_NAMES, METRIC_NAMES, type CanaryCompletedEvent } from "../../src/telemetry/types.js";

const refused: CanaryCompletedEvent = {
  registry: "/subscriptions/s/resourceGroups/rg/providers/Microsoft.ContainerRegistry/registries/canaryjpe",
  region: "japaneast",
  ok: false,
  verdict: "refused",
  refusedIp: "4.216.205.65",
  containingTags: ["AzureContainerRegistry.JapanEast", "AzureContainerRegistry"],
  runId: "ca1",
  durationMs: 1234,
  summary: "The firewall of canaryjpe refused the ACR Tasks agent.",
  advice: "Add region koreacentral to canaryjpe.",
  trigger: "timer",
};

describe("the canary's telemetry records", () => {
  it("sends AllowlistCanaryCompleted with the diagnosis, at error severity for a refusal", () => {
    expect(canaryCompletedRecord(refused)).toEqual({
      name: EVENT_NAMES.canaryCompleted,
      severity: "error",
      properties: {
        registry: refused.registry,
        region: "japaneast",
        ok: false,
        verdict: "refused",
        refusedIp: "4.216.205.65",
        containingTags: "AzureContainerRegistry.JapanEast,AzureContainerRegistry",
        runId: "ca1",
        durationMs: 1234,
        summary: refused.summary,
        advice: refused.advice,
        trigger: "timer",
      },
    });
  });

  it("reports an admitted run at info and another failure at warn severity", () => {
    expect(canaryCompletedRecord({ ...refused, ok: true, verdict: "admitted" }).severity).toBe("info");
    expect(canaryCompletedRecord({ ...refused, verdict: "failed" }).severity).toBe("warn");
  });

  it("records allowlist_canary_ok as 1 or 0 per registry, region and verdict", () => {
    expect(canaryMetricPoints(refused)).toEqual([
      {
        name: METRIC_NAMES.canaryOk,
        value: 0,
        dimensions: { registry: refused.registry, region: "japaneast", verdict: "refused" },
      },
    ]);
    expect(canaryMetricPoints({ ...refused, ok: true, verdict: "admitted" })[0]?.value).toBe(1);
  });
});
