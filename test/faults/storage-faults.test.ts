import { BlobServiceClient, type ContainerClient } from "@azure/storage-blob";
import { describe, expect, it } from "vitest";
import type { Runtime } from "../../src/app/runtime.js";
import { LedgerCorruptError, LockHeldError } from "../../src/errors.js";
import { blobContainerFromSettings, createBlobLedgerStore } from "../../src/ledger/blob-store.js";
import { registryKey } from "../../src/ledger/keys.js";
import type { LedgerStore } from "../../src/ledger/types.js";
import { AZURITE_ACCOUNT, AZURITE_KEY } from "../support/azurite.js";
import {
  faultSuite,
  DRIFTED_RULE,
  JAPAN_EAST,
  closedLoopbackPort,
  type FaultRow,
  type RowContext,
} from "./fault-lab.js";

/**
 * The storage rows of the fault matrix: the blob ledger on Azurite missing, corrupt, unreachable
 * or locked by another run. Ownership is never guessed from a ledger that cannot be read: a
 * missing ledger means adoption (only rules inside current ACR tags), anything worse stops the
 * run before ARM is asked.
 */

const suite = faultSuite("storage (blob ledger)");

function containerOf(runtime: Runtime): ContainerClient {
  const connection = process.env.AZURITE_CONNECTION_STRING;
  if (connection === undefined) throw new Error("AZURITE_CONNECTION_STRING is not set (global setup)");
  return BlobServiceClient.fromConnectionString(connection).getContainerClient(runtime.settings.ledgerContainer);
}

/** Where the blob store keeps a registry's ledger (src/ledger/blob-store.ts). */
const ledgerBlob = (registryId: string): string => `ledgers/${registryKey(registryId)}.json`;

/**
 * The production blob store for `runtime`'s storage settings, with short storage retries: the
 * SDK's default back-off (0 + 4 + 12 s) would make an unreachable account cost 16 s per row.
 */
function quickStore(runtime: Runtime): LedgerStore {
  return createBlobLedgerStore({
    containerClient: blobContainerFromSettings({
      connectionString: runtime.settings.storage.connectionString,
      containerName: runtime.settings.ledgerContainer,
      clientOptions: { retryOptions: { maxTries: 2, retryDelayInMs: 10, maxRetryDelayInMs: 20 } },
    }),
  });
}

async function unreachableStorage(): Promise<string> {
  const port = await closedLoopbackPort();
  return `DefaultEndpointsProtocol=http;AccountName=${AZURITE_ACCOUNT};AccountKey=${AZURITE_KEY};BlobEndpoint=http://127.0.0.1:${port}/${AZURITE_ACCOUNT};`;
}

const ownedOf = async (context: RowContext): Promise<readonly string[]> =>
  (await context.runtime.ports.ledger.read(context.id))?.ownedRules ?? [];

const rows: FaultRow[] = [
  {
    row: "ledger blob missing",
    fault: "ledger blob deleted after a sync; one owned rule removed by hand",
    test: "adopts the rules inside current ACR tags when the ledger blob is missing, re-adds the missing one, and leaves people's rules alone",
    expected: "converged",
    patches: "applied",
    prior: true,
    inject: async ({ runtime, id }) => {
      await containerOf(runtime).getBlobClient(ledgerBlob(id)).delete();
    },
    verify: async (o, context) => {
      const plan = o.outcome.ok ? o.outcome.result.plan : undefined;
      expect(plan?.ownership).toBe("adopted");
      expect(plan?.adds.map((a) => a.rule)).toEqual([DRIFTED_RULE]);
      expect([...(await ownedOf(context))].sort()).toEqual([...JAPAN_EAST].sort());
      // The audit trail is separate from the ledger: both syncs are still recorded.
      expect(await context.runtime.ports.ledger.listAudit(context.id)).toHaveLength(2);
    },
  },
  {
    row: "ledger blob corrupt",
    fault: "ledger blob overwritten with truncated JSON",
    test: "stops before any ARM call when the ledger blob is corrupt, names the blob, and converges once it is deleted",
    expected: "unchanged and reported",
    code: "LedgerCorrupt",
    patches: "none",
    prior: true,
    inject: async ({ runtime, id }) => {
      const garbage = '{"schemaVersion":1,"registryId":"/subscriptions/';
      await containerOf(runtime).getBlockBlobClient(ledgerBlob(id)).upload(garbage, garbage.length);
    },
    verify: (o, { id }) => {
      expect(o.requests).toEqual([]);
      expect(!o.outcome.ok && o.outcome.error instanceof LedgerCorruptError && o.outcome.error.message).toContain(
        ledgerBlob(id),
      );
    },
    // The remedy the error gives: delete it (the next run adopts).
    heal: async ({ runtime, id }) => {
      await containerOf(runtime).getBlobClient(ledgerBlob(id)).delete();
    },
    verifyNext: (o) => {
      expect(o.outcome.ok && o.outcome.result.plan.ownership).toBe("adopted");
    },
  },
  {
    row: "storage unreachable",
    fault: "AzureWebJobsStorage points at a closed loopback port",
    test: "stops before any ARM call when the ledger storage is unreachable, and converges once it is back",
    expected: "unchanged and reported",
    code: "LedgerUnavailable",
    patches: "none",
    setup: async (l) => {
      const id = l.addRegistry();
      const context = l.context(id, l.blobRuntime(id, { AzureWebJobsStorage: await unreachableStorage() }));
      context.ports = { ledger: quickStore(context.runtime) };
      return context;
    },
    inject: () => undefined,
    verify: (o) => {
      expect(o.requests).toEqual([]);
      expect(!o.outcome.ok && o.outcome.error instanceof Error && o.outcome.error.message).toMatch(/ECONNREFUSED/);
    },
    heal: (context) => {
      suite.lab.rebuild(context);
      context.ports = {};
    },
  },
  (() => {
    let held: { release(): Promise<void> } | undefined;
    return {
      row: "lease held by another run",
      fault: "another run holds the registry's lease; SYNC_LOCK_WAIT_MS=300",
      test: "stops before any ARM call while another run holds the registry's lease, names the holder, and converges once it is released",
      expected: "unchanged and reported",
      code: "LockHeld",
      patches: "none",
      settings: { SYNC_LOCK_WAIT_MS: "300" },
      inject: async (context) => {
        const other = suite.lab.blobRuntime(context.id, {}, context.runtime.settings.ledgerContainer);
        const handle = await other.ports.ledger.acquireLock(context.id, { waitMs: 0 });
        held = handle;
        context.cleanups.push(() => handle.release());
      },
      verify: (o) => {
        expect(o.requests).toEqual([]);
        const error = o.outcome.ok ? undefined : o.outcome.error;
        expect(error).toBeInstanceOf(LockHeldError);
        expect(error instanceof LockHeldError && error.details.waitedMs).toBe(300);
        expect(error instanceof LockHeldError && error.message).toMatch(/locked by .+:\d+/);
      },
      heal: () => held?.release(),
    } satisfies FaultRow;
  })(),
  {
    row: "storage lost right after the PATCH",
    fault: "audit append goes to an unreachable account",
    test: "reports a write whose audit entry could not be stored, and the next run still owns the rules it added",
    expected: "written and reported",
    code: "LedgerUnavailable",
    patches: "applied",
    prior: true,
    inject: async (context) => {
      const real = context.runtime.ports.ledger;
      const lost = quickStore(suite.lab.blobRuntime(context.id, { AzureWebJobsStorage: await unreachableStorage() }));
      // The real store, except that the account is gone by the time the audit entry is written.
      context.ports = {
        ledger: {
          read: (id) => real.read(id),
          write: (s) => real.write(s),
          listAudit: (id) => real.listAudit(id),
          acquireLock: (id, o) => real.acquireLock(id, o),
          appendAudit: (e) => lost.appendAudit(e),
          readFreeze: (id) => real.readFreeze(id),
          writeFreeze: (id, f) => real.writeFreeze(id, f),
        },
      };
    },
    verify: async (o, context) => {
      expect(o.after).toContain(DRIFTED_RULE);
      // Claimed as pending before the PATCH: the rule is not mistaken for a person's.
      expect((await context.runtime.ports.ledger.read(context.id))?.pendingRules).toEqual([DRIFTED_RULE]);
    },
    heal: (context) => {
      context.ports = {};
    },
    verifyNext: async (o, context) => {
      expect(o.patchesSent).toBe(0);
      expect(await ownedOf(context)).toContain(DRIFTED_RULE);
    },
  },
];

describe("storage faults", () => {
  for (const row of rows) it(row.test, () => suite.lab.runRow(suite.matrix, row));

  it("has a verdict for every row, each as expected", () => {
    expect(suite.matrix.entries.map((e) => e.row)).toEqual(rows.map((r) => r.row));
    expect(suite.matrix.entries.filter((e) => !e.matched)).toEqual([]);
  });
});
