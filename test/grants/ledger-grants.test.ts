import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { LedgerCorruptError } from "../../src/errors.js";
import { createFileLedgerStore } from "../../src/ledger/file-store.js";
import { ledgerStateToJson, parseLedgerState } from "../../src/ledger/schema.js";
import type { LedgerState } from "../../src/ledger/types.js";

const REGISTRY =
  "/subscriptions/00000000-0000-0000-0000-000000000001/resourceGroups/rg/providers/Microsoft.ContainerRegistry/registries/myreg";
const WHERE = { description: "in a test", details: {} };

/** A ledger exactly as the service stored it before grants existed. */
const OLD_LEDGER = {
  schemaVersion: 1,
  registryId: REGISTRY,
  ownedRules: ["20.18.0.0/26"],
  pendingRules: [],
  appliedTagChangeNumbers: { "AzureContainerRegistry.JapanEast": 8 },
  updatedAt: "2025-10-22T03:00:00.000Z",
  lastAuditId: null,
};

const GRANT = {
  id: "g0123456789ab",
  rule: "192.0.2.7/32",
  createdAt: "2026-03-02T09:00:00.000Z",
  expiresAt: "2026-03-02T17:00:00.000Z",
  grantedBy: "cli:alice@laptop",
  reason: "docker pull during incident 4711",
};

describe("grants in the ledger", () => {
  it("reads a ledger written before grants existed as one without grants, and stores it unchanged", () => {
    const state = parseLedgerState(JSON.stringify(OLD_LEDGER), WHERE);
    expect(state.grants ?? []).toEqual([]);
    expect(state.clockHighWater).toBeUndefined();
    expect(ledgerStateToJson(state)).toEqual(OLD_LEDGER);
  });

  it("round-trips grants and the recorded clock through the file store", async () => {
    const dir = await mkdtemp(join(tmpdir(), "ledger-grants-"));
    try {
      const store = createFileLedgerStore({ path: join(dir, "ledger.json") });
      const state: LedgerState = {
        ...parseLedgerState(JSON.stringify(OLD_LEDGER), WHERE),
        ownedRules: ["20.18.0.0/26", "192.0.2.7/32"],
        grants: [GRANT],
        clockHighWater: "2026-03-02T09:00:00.000Z",
      };
      await store.write(state);
      expect(await store.read(REGISTRY)).toEqual(state);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it("reads an old ledger file from an earlier version of the CLI", async () => {
    const dir = await mkdtemp(join(tmpdir(), "ledger-grants-"));
    try {
      const path = join(dir, "ledger.json");
      await writeFile(path, JSON.stringify({ schemaVersion: 1, ledgers: { [REGISTRY.toLowerCase()]: OLD_LEDGER } }));
      const read = await createFileLedgerStore({ path }).read(REGISTRY);
      expect(read?.ownedRules).toEqual(["20.18.0.0/26"]);
      expect(read?.grants ?? []).toEqual([]);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it("refuses a grant it could not trust: a bad rule, expiry or id, naming the field", () => {
    for (const [field, value] of [
      ["rule", "192.0.2.7/24"],
      ["expiresAt", "next tuesday"],
      ["id", "../../etc"],
      ["reason", ""],
    ] as const) {
      const text = JSON.stringify({ ...OLD_LEDGER, grants: [{ ...GRANT, [field]: value }] });
      expect(() => parseLedgerState(text, WHERE), field).toThrow(LedgerCorruptError);
      expect(() => parseLedgerState(text, WHERE), field).toThrow(new RegExp(`grants\\.0\\.${field}`));
    }
  });
});
