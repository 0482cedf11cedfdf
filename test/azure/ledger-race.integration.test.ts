import { randomBytes } from "node:crypto";
import { setTimeout as sleep } from "node:timers/promises";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { LedgerConflictError, LockLostError } from "../../src/errors.js";
import { blobContainerFromSettings, createBlobLedgerStore } from "../../src/ledger/blob-store.js";
import { registryKey } from "../../src/ledger/keys.js";
import type { LedgerState } from "../../src/ledger/types.js";
import { runInvocation } from "../../src/sync/invocation.js";
import { FAST_TUNING, startHarness, type Harness } from "../support/harness.js";

/**
 * Two writers of one ledger on a real Azurite: writes are conditional on the ETag this store read
 * (If-Match, or If-None-Match: * for a ledger that did not exist), a lost race is a typed error,
 * and a run whose lease renewal failed stops before its ledger write and its PATCH.
 */

const REGISTRY =
  "/subscriptions/00000000-0000-0000-0000-000000000001/resourceGroups/rg/providers/Microsoft.ContainerRegistry/registries/racereg";

function containerClient(name: string) {
  return blobContainerFromSettings({ connectionString: process.env.AZURITE_CONNECTION_STRING, containerName: name });
}

function state(ownedRules: string[]): LedgerState {
  return {
    schemaVersion: 1,
    registryId: REGISTRY,
    ownedRules,
    pendingRules: [],
    appliedTagChangeNumbers: {},
    updatedAt: new Date().toISOString(),
    lastAuditId: undefined,
  };
}

async function untilThrows(check: () => void, withinMs: number): Promise<unknown> {
  const until = Date.now() + withinMs;
  for (;;) {
    try {
      check();
    } catch (error) {
      return error;
    }
    if (Date.now() > until) return undefined;
    await sleep(50);
  }
}

describe("two writers of one ledger", () => {
  it("refuses the second writer when both created the ledger from nothing", async () => {
    const name = `race-${randomBytes(6).toString("hex")}`;
    const first = createBlobLedgerStore({ containerClient: containerClient(name) });
    const second = createBlobLedgerStore({ containerClient: containerClient(name) });
    expect(await first.read(REGISTRY)).toBeUndefined();
    expect(await second.read(REGISTRY)).toBeUndefined();
    await first.write(state(["20.0.0.0/24"]));
    await expect(second.write(state(["30.0.0.0/24"]))).rejects.toBeInstanceOf(LedgerConflictError);
    expect((await first.read(REGISTRY))?.ownedRules).toEqual(["20.0.0.0/24"]);
  });

  it("refuses the writer whose read is older than the other's write, and keeps the winner's ledger", async () => {
    const name = `race-${randomBytes(6).toString("hex")}`;
    const setup = createBlobLedgerStore({ containerClient: containerClient(name) });
    await setup.write(state(["10.0.0.0/24"]));
    const first = createBlobLedgerStore({ containerClient: containerClient(name) });
    const second = createBlobLedgerStore({ containerClient: containerClient(name) });
    await first.read(REGISTRY);
    await second.read(REGISTRY);
    await first.write(state(["10.0.0.0/24", "20.0.0.0/24"]));
    const error = await second.write(state([])).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(LedgerConflictError);
    expect((error as LedgerConflictError).details.condition).toBe("if-match");
    expect((error as LedgerConflictError).message).toContain("another writer won the race");
    expect((await setup.read(REGISTRY))?.ownedRules).toEqual(["10.0.0.0/24", "20.0.0.0/24"]);
    // A writer that reads again may write again.
    await second.read(REGISTRY);
    await second.write(state(["10.0.0.0/24"]));
    expect((await setup.read(REGISTRY))?.ownedRules).toEqual(["10.0.0.0/24"]);
  });

  it("keeps writing after its own writes (the store follows its own ETag)", async () => {
    const store = createBlobLedgerStore({ containerClient: containerClient(`race-${randomBytes(6).toString("hex")}`) });
    await store.read(REGISTRY);
    await store.write(state(["20.0.0.0/24"]));
    await store.write(state(["20.0.0.0/24", "21.0.0.0/24"]));
    expect((await store.read(REGISTRY))?.ownedRules).toHaveLength(2);
  });
});

describe("a lost lease", () => {
  it("makes the lock say so once a renewal failed", async () => {
    const name = `lease-${randomBytes(6).toString("hex")}`;
    const store = createBlobLedgerStore({
      containerClient: containerClient(name),
      leaseSeconds: 15,
      renewEveryMs: 100,
    });
    const lock = await store.acquireLock(REGISTRY, { waitMs: 0 });
    expect(() => lock.assertHeld?.()).not.toThrow();
    await containerClient(name)
      .getBlobClient(`locks/${registryKey(REGISTRY)}.lock`)
      .getBlobLeaseClient()
      .breakLease(0);
    const error = await untilThrows(() => lock.assertHeld?.(), 10_000);
    expect(error).toBeInstanceOf(LockLostError);
    await lock.release();
  });
});

describe("a sync run that loses its lease", () => {
  let harness: Harness;
  beforeAll(async () => {
    harness = await startHarness();
  });
  afterAll(async () => {
    await harness.close();
  });

  it("stops before its ledger write and its PATCH", async () => {
    const id = harness.addRegistry({ name: `reg${randomBytes(4).toString("hex")}`, ipRules: ["203.0.113.10"] });
    const container = `lease-${randomBytes(6).toString("hex")}`;
    const runtime = harness.runtime(
      {
        TARGET_REGISTRIES: id,
        AzureWebJobsStorage: process.env.AZURITE_CONNECTION_STRING,
        LEDGER_CONTAINER: container,
      },
      { tuning: { ...FAST_TUNING, ledger: { leaseSeconds: 15, renewEveryMs: 100 } } },
    );
    // The registry read is slow; meanwhile someone breaks the lease (as a stalled worker would lose it).
    harness.arm.injectFault({ op: "get", registryId: id, fault: { kind: "delay", ms: 1_200 } });
    const writesBefore = harness.arm.writes;
    const running = runInvocation(runtime.settings, runtime.ports, { mode: "apply", trigger: "test", actor: "test" });
    const lockBlob = containerClient(container).getBlobClient(`locks/${registryKey(id)}.lock`);
    for (let i = 0; i < 200; i += 1) {
      const leased = await lockBlob.getProperties().then(
        (p) => p.leaseState === "leased",
        () => false,
      );
      if (leased) break;
      await sleep(20);
    }
    await lockBlob.getBlobLeaseClient().breakLease(0);
    const [outcome] = await running;
    expect(outcome?.ok === false ? outcome.error : undefined).toBeInstanceOf(LockLostError);
    expect(harness.arm.writes).toBe(writesBefore);
    expect(harness.arm.patchBodies(id)).toEqual([]);
    expect(await runtime.ports.ledger.read(id)).toBeUndefined();
  });
});
