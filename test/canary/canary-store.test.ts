import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import type { CanaryResult } from "../../src/canary/result.js";
import { LedgerCorruptError } from "../../src/errors.js";
import { createFileCanaryStore } from "../../src/ledger/canary-store.js";

const ID = "/subscriptions/s/resourceGroups/rg/providers/Microsoft.ContainerRegistry/registries/canaryjpe";
const RESULT: CanaryResult = {
  schemaVersion: 1,
  registryId: ID,
  registry: "canaryjpe",
  region: "japaneast",
  runId: "ca1",
  runStatus: "Failed",
  at: "2026-12-01T15:00:00.000Z",
  durationMs: 42,
  trigger: "cli",
  serviceTagsFile: "ServiceTags_Public_20251020.json",
  verdict: "refused",
  ok: false,
  refusedIp: "4.216.205.65",
  containingTags: ["AzureContainerRegistry.JapanEast"],
  summary: "refused",
  advice: "sync",
  warnings: [],
};

describe("the CLI's canary result file", () => {
  it("keeps the last result of each registry beside the ledger file and reads it back", async () => {
    const ledger = join(mkdtempSync(join(tmpdir(), "canary-store-")), "ledger.json");
    const store = createFileCanaryStore(ledger);
    expect(await store.read(ID)).toBeUndefined();
    await store.write(RESULT);
    await store.write({ ...RESULT, runId: "ca2", verdict: "admitted", ok: true, refusedIp: undefined });
    expect(await store.read(ID.toUpperCase())).toEqual({
      ...RESULT,
      runId: "ca2",
      verdict: "admitted",
      ok: true,
      refusedIp: undefined,
    });
    expect(JSON.parse(readFileSync(`${ledger}.canary.json`, "utf8"))).toMatchObject({ schemaVersion: 1 });
  });

  it("refuses a damaged result rather than half-reading it", async () => {
    const ledger = join(mkdtempSync(join(tmpdir(), "canary-store-")), "ledger.json");
    writeFileSync(
      `${ledger}.canary.json`,
      JSON.stringify({ schemaVersion: 1, results: { [ID.toLowerCase()]: { ok: "yes" } } }),
    );
    await expect(createFileCanaryStore(ledger).read(ID)).rejects.toBeInstanceOf(LedgerCorruptError);
  });
});
