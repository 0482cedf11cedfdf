import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { projectRoot } from "../support/paths.js";

/** host.json as the Functions host reads it (azure-facts §4, §7). */
const host = JSON.parse(readFileSync(join(projectRoot(), "host.json"), "utf8")) as {
  functionTimeout?: string;
  logging?: { applicationInsights?: { samplingSettings?: { isEnabled?: boolean; excludedTypes?: string } } };
};

/** The telemetry types `samplingSettings.excludedTypes` accepts. */
const SAMPLING_TYPES = ["Dependency", "Event", "Exception", "PageView", "Request", "Trace"];

describe("host.json", () => {
  it("excludes from sampling only types the host knows, events and exceptions included", () => {
    const excluded = (host.logging?.applicationInsights?.samplingSettings?.excludedTypes ?? "").split(";");
    expect(excluded.filter((type) => !SAMPLING_TYPES.includes(type))).toEqual([]);
    expect(excluded).toEqual(expect.arrayContaining(["Event", "Exception"]));
  });
});

describe("time budgets against host.json", () => {
  it("gives the timer's default budget and the telemetry flush room below functionTimeout", async () => {
    const { loadSettings } = await import("../../src/config/settings.js");
    const [h = "0", m = "0", s = "0"] = (host.functionTimeout ?? "").split(":");
    const timeoutMs = ((Number(h) * 60 + Number(m)) * 60 + Number(s)) * 1000;
    expect(timeoutMs).toBeGreaterThan(0);
    const settings = loadSettings({
      TARGET_REGISTRIES:
        "/subscriptions/00000000-0000-0000-0000-000000000001/resourceGroups/rg/providers/Microsoft.ContainerRegistry/registries/myreg",
    });
    // 15 s for the flush (the sink's cap) plus 15 s for the lock release and the host's own work.
    expect(settings.deadlineMs + 30_000).toBeLessThanOrEqual(timeoutMs);
  });
});
