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
