import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { randomBytes } from "node:crypto";
import type { Runtime } from "../../src/app/runtime.js";
import { runInvocation, type TargetOutcome } from "../../src/sync/invocation.js";
import type { Telemetry } from "../../src/telemetry/types.js";
import { startHarness, type Harness } from "../support/harness.js";
import { startIngestionEndpoint, type IngestionEndpoint } from "../support/ingestion-endpoint.js";

/**
 * A real invocation over three registries (one converges, one is missing, one trips a guard),
 * through the production runtime, with the exporter pointed at a loopback ingestion endpoint.
 * What the alerts and the workbook query must arrive: names, properties and metric values.
 */

let harness: Harness;
let ingestion: IngestionEndpoint;
let runtime: Runtime;
let outcomes: TargetOutcome[];
const ids: { ok: string; missing: string; standard: string } = { ok: "", missing: "", standard: "" };

beforeAll(async () => {
  harness = await startHarness();
  ingestion = await startIngestionEndpoint();
  const suffix = randomBytes(3).toString("hex");
  ids.ok = harness.addRegistry({ name: `okreg${suffix}`, ipRules: ["203.0.113.10"] });
  ids.standard = harness.addRegistry({ name: `stdreg${suffix}`, sku: "Standard" });
  ids.missing = ids.ok.replace(`okreg${suffix}`, `missingreg${suffix}`);
  runtime = harness.runtime({
    TARGET_REGISTRIES: [ids.ok, ids.missing, ids.standard].join(","),
    AzureWebJobsStorage: process.env.AZURITE_CONNECTION_STRING,
    LEDGER_CONTAINER: `telemetry-${suffix}`,
    APPLICATIONINSIGHTS_CONNECTION_STRING: ingestion.connectionString,
  });
  outcomes = await runInvocation(runtime.settings, runtime.ports, { mode: "apply", trigger: "timer", actor: "timer" });
});

afterAll(async () => {
  await (runtime.ports.telemetry as Telemetry).shutdown();
  await ingestion.close();
  await harness.close();
});

describe("telemetry of a real sync invocation", () => {
  it("runs every registry although two of them fail", () => {
    expect(outcomes.map((o) => o.ok)).toEqual([true, false, false]);
  });

  it("sends AllowlistSyncCompleted for the registry that converged, with its figures", () => {
    const [completed, ...others] = ingestion.events("AllowlistSyncCompleted");
    expect(others).toEqual([]);
    expect(completed?.properties).toMatchObject({
      registry: ids.ok,
      dryRun: "false",
      adds: "11",
      removes: "0",
      rulesUsed: "12",
      ruleLimit: "100",
      extraAddresses: "0",
      trigger: "timer",
      sourceFile: "ServiceTags_Public_20251020.json",
    });
    expect(completed?.properties.tagChangeNumbers).toBe("AzureContainerRegistry.JapanEast=8");
  });

  it("carries the freshness of the data used: its source, its age in days and the newest changeNumber seen", () => {
    const [completed] = ingestion.events("AllowlistSyncCompleted");
    expect(completed?.properties).toMatchObject({ sourceKind: "details-page", newestChangeNumber: "374" });
    // The fixture is the file of 2025-10-20: its age is the days from that Monday to this run.
    const expected = (Date.now() - Date.parse("2025-10-20T00:00:00Z")) / 86_400_000;
    expect(Math.abs(Number(completed?.properties.dataAgeDays) - expected)).toBeLessThan(1);
  });

  it("sends AllowlistSyncFailed for the missing registry, with its error type and no secret", () => {
    const failed = ingestion.events("AllowlistSyncFailed");
    expect(failed).toHaveLength(1);
    expect(failed[0]?.properties).toMatchObject({
      registry: ids.missing,
      errorType: "RegistryNotFound",
      dryRun: "false",
    });
    expect(failed[0]?.properties.message).toContain("missingreg");
    expect(JSON.stringify(ingestion.envelopes)).not.toMatch(/Bearer |access_token/);
  });

  it("sends AllowlistGuardTripped naming the guard for the Standard registry", () => {
    const tripped = ingestion.events("AllowlistGuardTripped");
    expect(tripped.map((e) => [e.properties.registry, e.properties.guard])).toEqual([[ids.standard, "sku"]]);
  });

  it("records the rule gauges and the change counter for the converged registry", () => {
    const value = (name: string) =>
      ingestion
        .metrics(name)
        .filter((m) => m.properties.registry === ids.ok)
        .map((m) => m.value);
    expect(value("allowlist_rules_used")).toEqual([12]);
    expect(value("allowlist_rules_limit")).toEqual([100]);
    expect(value("allowlist_extra_addresses")).toEqual([0]);
    expect(value("allowlist_changes")).toEqual([11]);
  });
});
