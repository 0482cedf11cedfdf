import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { LedgerCorruptError, LedgerError, LockHeldError } from "../../src/errors.js";
import { createAuditId } from "../../src/ledger/audit-id.js";
import type { AuditEntry, LedgerState, LedgerStore } from "../../src/ledger/types.js";

/** One backing storage (a container, a file) that several stores ("runs") can open. */
export interface LedgerStoreHarness {
  /** A store on the shared storage; each call is another run. */
  open(): LedgerStore;
  /** Replaces the stored ledger of `registryId` with `text` as is. */
  plantLedger(registryId: string, text: string): Promise<void>;
  /** Adds a raw audit record (a blob, a line) for `registryId`. */
  plantAudit(registryId: string, id: string, text: string): Promise<void>;
  cleanup(): Promise<void>;
}

export const REGISTRY =
  "/subscriptions/00000000-0000-0000-0000-000000000001/resourceGroups/rg-build/providers/Microsoft.ContainerRegistry/registries/contosoacr";
export const OTHER_REGISTRY =
  "/subscriptions/00000000-0000-0000-0000-000000000001/resourceGroups/rg-build/providers/Microsoft.ContainerRegistry/registries/fabrikamacr";

export function ledgerState(overrides: Partial<LedgerState> = {}): LedgerState {
  return {
    schemaVersion: 1,
    registryId: REGISTRY,
    ownedRules: ["20.42.66.0/24", "40.71.10.216/29"],
    pendingRules: [],
    appliedTagChangeNumbers: { "AzureContainerRegistry.EastUS": 42 },
    updatedAt: "2025-10-23T03:00:00.000Z",
    lastAuditId: undefined,
    ...overrides,
  };
}

export function auditEntry(at: Date, overrides: Partial<AuditEntry> = {}): AuditEntry {
  return {
    schemaVersion: 1,
    id: createAuditId(at),
    registryId: REGISTRY,
    at: at.toISOString(),
    operation: "sync",
    rollbackOf: undefined,
    actor: "timer",
    before: { ipRules: ["203.0.113.7"], ownedRules: [] },
    after: { ipRules: ["203.0.113.7", "20.42.66.0/24"], ownedRules: ["20.42.66.0/24"] },
    source: {
      kind: "details-page",
      location:
        "https://download.microsoft.com/download/7/1/D/71D86715-5596-4529-9B13-DA13A5DE5B63/ServiceTags_Public_20251020.json",
      fileName: "ServiceTags_Public_20251020.json",
      changeNumber: 374,
      cloud: "Public",
      retrievedAt: at.toISOString(),
      bytes: 4250305,
    },
    plan: { adds: ["20.42.66.0/24"], removes: [], nested: { note: "kept as is" } },
    ...overrides,
  };
}

/** The behaviour every `LedgerStore` must have, run against a fresh storage per test. */
export function describeLedgerStoreContract(
  name: string,
  makeHarness: () => LedgerStoreHarness | Promise<LedgerStoreHarness>,
): void {
  describe(`${name}: the LedgerStore contract`, () => {
    let harness: LedgerStoreHarness;
    let store: LedgerStore;

    beforeEach(async () => {
      harness = await makeHarness();
      store = harness.open();
    });

    afterEach(async () => {
      await harness.cleanup();
    });

    it("reads undefined for a registry without a ledger", async () => {
      expect(await store.read(REGISTRY)).toBeUndefined();
    });

    it("reads back what it wrote, an absent lastAuditId included", async () => {
      await store.write(ledgerState());
      expect(await store.read(REGISTRY)).toEqual(ledgerState());
      const next = ledgerState({
        ownedRules: ["20.42.66.0/24"],
        lastAuditId: createAuditId(new Date("2025-10-24T03:00:00Z")),
      });
      await store.write(next);
      expect(await harness.open().read(REGISTRY)).toEqual(next);
    });

    it("keeps a freeze per registry apart from the ledger, across runs, until it is lifted", async () => {
      const freeze = {
        schemaVersion: 1 as const,
        registryId: REGISTRY,
        reason: "manual fix during incident 42",
        by: "cli:alice@laptop",
        at: "2025-10-24T03:00:00.000Z",
      };
      expect(await store.readFreeze(REGISTRY)).toBeUndefined();
      await store.writeFreeze(REGISTRY, freeze);
      await store.write(ledgerState());
      expect(await harness.open().readFreeze(REGISTRY.toUpperCase())).toEqual(freeze);
      expect(await store.readFreeze(OTHER_REGISTRY)).toBeUndefined();
      expect(await store.read(REGISTRY)).toEqual(ledgerState());
      await store.writeFreeze(REGISTRY, undefined);
      expect(await harness.open().readFreeze(REGISTRY)).toBeUndefined();
      await store.writeFreeze(REGISTRY, undefined);
    });

    it("finds a ledger whatever the case of the registry id", async () => {
      await store.write(ledgerState());
      expect((await store.read(REGISTRY.toUpperCase()))?.ownedRules).toEqual(ledgerState().ownedRules);
    });

    it("keeps the ledgers of two registries apart", async () => {
      await store.write(ledgerState());
      await store.write(ledgerState({ registryId: OTHER_REGISTRY, ownedRules: ["52.168.0.0/16"] }));
      expect((await store.read(REGISTRY))?.ownedRules).toEqual(ledgerState().ownedRules);
      expect((await store.read(OTHER_REGISTRY))?.ownedRules).toEqual(["52.168.0.0/16"]);
    });

    it("refuses to write a ledger it could not read back", async () => {
      await expect(store.write(ledgerState({ ownedRules: ["not-a-prefix"] }))).rejects.toBeInstanceOf(LedgerError);
      expect(await store.read(REGISTRY)).toBeUndefined();
    });

    it("reports a ledger that is not JSON as corrupt, naming it and saying what to do", async () => {
      await harness.plantLedger(REGISTRY, '{"schemaVersion": 1, "registryId": ');
      const error = await store.read(REGISTRY).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(LedgerCorruptError);
      expect((error as LedgerCorruptError).message).toMatch(/not valid JSON/);
      expect((error as LedgerCorruptError).remedy).toMatch(/delete it/);
      expect((error as LedgerCorruptError).remedy).toMatch(/adopts/);
    });

    it("reports a ledger of an unknown schema version as corrupt", async () => {
      await harness.plantLedger(REGISTRY, JSON.stringify({ ...ledgerState(), schemaVersion: 2 }));
      await expect(store.read(REGISTRY)).rejects.toThrow(/schemaVersion 2/);
    });

    it("reports a ledger with a wrong field as corrupt", async () => {
      await harness.plantLedger(REGISTRY, JSON.stringify({ ...ledgerState(), ownedRules: "20.42.66.0/24" }));
      await expect(store.read(REGISTRY)).rejects.toBeInstanceOf(LedgerCorruptError);
    });

    it("lists audit entries of one registry oldest first, whatever the order of appending", async () => {
      const second = auditEntry(new Date("2025-10-20T03:00:00.000Z"));
      const first = auditEntry(new Date("2025-10-13T03:00:00.000Z"), { rollbackOf: undefined, source: undefined });
      const third = auditEntry(new Date("2025-10-27T03:00:00.000Z"), { operation: "rollback", rollbackOf: second.id });
      await store.appendAudit(second);
      await store.appendAudit(first);
      await store.appendAudit(auditEntry(new Date("2025-10-21T03:00:00.000Z"), { registryId: OTHER_REGISTRY }));
      await store.appendAudit(third);
      expect(await harness.open().listAudit(REGISTRY)).toEqual([first, second, third]);
      expect((await store.listAudit(OTHER_REGISTRY)).map((e) => e.registryId)).toEqual([OTHER_REGISTRY]);
    });

    it("lists no audit entries for a registry without any", async () => {
      expect(await store.listAudit(REGISTRY)).toEqual([]);
    });

    it("never overwrites an audit entry", async () => {
      const entry = auditEntry(new Date("2025-10-20T03:00:00.000Z"));
      await store.appendAudit(entry);
      await expect(store.appendAudit({ ...entry, actor: "someone-else" })).rejects.toThrow(/never overwritten/);
      expect((await store.listAudit(REGISTRY)).map((e) => e.actor)).toEqual(["timer"]);
    });

    it("reports a damaged audit entry as corrupt", async () => {
      const id = createAuditId(new Date("2025-10-20T03:00:00.000Z"));
      await harness.plantAudit(REGISTRY, id, '{"schemaVersion":1,"id":"');
      await expect(store.listAudit(REGISTRY)).rejects.toBeInstanceOf(LedgerCorruptError);
    });

    it("makes a second run wait for the lock, then throws LockHeldError", async () => {
      const held = await store.acquireLock(REGISTRY, { waitMs: 0 });
      const error = await harness
        .open()
        .acquireLock(REGISTRY, { waitMs: 400 })
        .catch((e: unknown) => e);
      expect(error).toBeInstanceOf(LockHeldError);
      expect((error as LockHeldError).details.waitedMs).toBe(400);
      expect((error as LockHeldError).message).toContain(REGISTRY);
      await held.release();
    });

    it("lets the next run take the lock once it is released", async () => {
      const held = await store.acquireLock(REGISTRY, { waitMs: 0 });
      await held.release();
      const next = await harness.open().acquireLock(REGISTRY, { waitMs: 0 });
      await next.release();
      await next.release();
    });

    it("hands the lock to a waiting run when the holder releases it", async () => {
      const held = await store.acquireLock(REGISTRY, { waitMs: 0 });
      const waiting = harness.open().acquireLock(REGISTRY, { waitMs: 20_000 });
      setTimeout(() => void held.release(), 300);
      const next = await waiting;
      await next.release();
    });
  });
}
