import { randomBytes } from "node:crypto";
import { createServer } from "node:net";
import { BlobServiceClient, ContainerClient, StorageSharedKeyCredential } from "@azure/storage-blob";
import type { AccessToken, TokenCredential } from "@azure/identity";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ConfigError, LedgerError, LockHeldError } from "../../src/errors.js";
import { blobContainerFromSettings, createBlobLedgerStore } from "../../src/ledger/blob-store.js";
import { registryKey } from "../../src/ledger/keys.js";
import { AZURITE_ACCOUNT, AZURITE_KEY } from "../support/azurite.js";
import { auditEntry, describeLedgerStoreContract, ledgerState, REGISTRY } from "./ledger-store-contract.js";

function connectionString(): string {
  const value = process.env.AZURITE_CONNECTION_STRING;
  if (value === undefined) throw new Error("AZURITE_CONNECTION_STRING is not set: the global setup starts Azurite.");
  return value;
}

function uniqueContainerName(): string {
  return `ledger-${randomBytes(6).toString("hex")}`;
}

function container(name = uniqueContainerName()): ContainerClient {
  return BlobServiceClient.fromConnectionString(connectionString()).getContainerClient(name);
}

async function blobNames(client: ContainerClient): Promise<string[]> {
  const names: string[] = [];
  for await (const item of client.listBlobsFlat()) names.push(item.name);
  return names.sort();
}

describeLedgerStoreContract("blob store on Azurite", () => {
  const client = container();
  const open = () => createBlobLedgerStore({ containerClient: client, prefix: "state", pollMs: 100 });
  return {
    open,
    async plantLedger(registryId, text) {
      await client.createIfNotExists();
      await client
        .getBlockBlobClient(`state/ledgers/${registryKey(registryId)}.json`)
        .upload(text, Buffer.byteLength(text));
    },
    async plantAudit(registryId, id, text) {
      await client.createIfNotExists();
      await client
        .getBlockBlobClient(`state/audit/${registryKey(registryId)}/${id}.json`)
        .upload(text, Buffer.byteLength(text));
    },
    async cleanup() {
      await client.deleteIfExists();
    },
  };
});

describe("blob store specifics", () => {
  let closedPort: number;
  const created: ContainerClient[] = [];

  beforeAll(async () => {
    const probe = createServer();
    await new Promise<void>((resolve) =>
      probe.listen(0, "127.0.0.1", () => {
        resolve();
      }),
    );
    const address = probe.address();
    closedPort = typeof address === "object" && address !== null ? address.port : 0;
    await new Promise<void>((resolve) =>
      probe.close(() => {
        resolve();
      }),
    );
  });

  afterAll(async () => {
    for (const client of created) await client.deleteIfExists();
  });

  function tracked(): ContainerClient {
    const client = container();
    created.push(client);
    return client;
  }

  it("creates the container on first use and lays blobs out under the prefix", async () => {
    const client = tracked();
    expect(await client.exists()).toBe(false);
    const store = createBlobLedgerStore({ containerClient: client, prefix: "/acr-allowlist-sync/" });
    await store.write(ledgerState());
    const entry = auditEntry(new Date("2025-10-20T03:00:00.000Z"));
    await store.appendAudit(entry);
    const lock = await store.acquireLock(REGISTRY, { waitMs: 0 });
    await lock.release();
    const key =
      "subscriptions/00000000-0000-0000-0000-000000000001/resourcegroups/rg-build/providers/microsoft.containerregistry/registries/contosoacr";
    expect(await blobNames(client)).toEqual([
      `acr-allowlist-sync/audit/${key}/${entry.id}.json`,
      `acr-allowlist-sync/ledgers/${key}.json`,
      `acr-allowlist-sync/locks/${key}.lock`,
    ]);
  });

  it("stores the ledger as readable JSON with every field", async () => {
    const client = tracked();
    await createBlobLedgerStore({ containerClient: client }).write(ledgerState());
    const names = await blobNames(client);
    const text = (await client.getBlobClient(names[0] ?? "").downloadToBuffer()).toString("utf8");
    expect(JSON.parse(text)).toEqual({ ...ledgerState(), lastAuditId: null });
  });

  it("names the holder of the lease in the LockHeldError", async () => {
    const client = tracked();
    const first = createBlobLedgerStore({ containerClient: client, owner: "timer on worker-1" });
    const held = await first.acquireLock(REGISTRY, { waitMs: 0 });
    const error = await createBlobLedgerStore({ containerClient: client, pollMs: 50 })
      .acquireLock(REGISTRY, { waitMs: 200 })
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(LockHeldError);
    expect((error as LockHeldError).message).toContain("timer on worker-1");
    expect((error as LockHeldError).details.container).toBe(client.containerName);
    await held.release();
  });

  it("names the current holder when the lock blob is left from an earlier run's lock", async () => {
    const client = tracked();
    const earlier = await createBlobLedgerStore({ containerClient: client, owner: "yesterday's timer" }).acquireLock(
      REGISTRY,
      { waitMs: 0 },
    );
    await earlier.release();
    const held = await createBlobLedgerStore({ containerClient: client, owner: "queue on worker-2" }).acquireLock(
      REGISTRY,
      { waitMs: 0 },
    );
    const error = await createBlobLedgerStore({ containerClient: client, pollMs: 50 })
      .acquireLock(REGISTRY, { waitMs: 100 })
      .catch((e: unknown) => e);
    expect((error as LockHeldError).message).toContain("queue on worker-2");
    await held.release();
    expect((await blobNames(client)).filter((name) => name.startsWith("locks/"))).toHaveLength(1);
  });

  it("keeps the locks of two registries apart", async () => {
    const client = tracked();
    const store = createBlobLedgerStore({ containerClient: client });
    const a = await store.acquireLock(REGISTRY, { waitMs: 0 });
    const b = await store.acquireLock(`${REGISTRY}-other`, { waitMs: 0 });
    await a.release();
    await b.release();
  });

  it("refuses a lease duration Azure would refuse", () => {
    expect(() => createBlobLedgerStore({ containerClient: tracked(), leaseSeconds: 5 })).toThrow(ConfigError);
  });

  it("turns unreachable storage into a LedgerError that names the container and what to check", async () => {
    const unreachable = new ContainerClient(
      `http://127.0.0.1:${closedPort}/${AZURITE_ACCOUNT}/ledger-unreachable`,
      new StorageSharedKeyCredential(AZURITE_ACCOUNT, AZURITE_KEY),
      { retryOptions: { maxTries: 1 } },
    );
    const store = createBlobLedgerStore({ containerClient: unreachable });
    for (const action of [
      () => store.read(REGISTRY),
      () => store.write(ledgerState()),
      () => store.acquireLock(REGISTRY, { waitMs: 0 }),
    ]) {
      const error = await action().catch((e: unknown) => e);
      expect(error).toBeInstanceOf(LedgerError);
      expect((error as LedgerError).message).toContain("ledger-unreachable");
      expect((error as LedgerError).remedy).toMatch(/AzureWebJobsStorage/);
      expect((error as LedgerError).remedy).toMatch(/Storage Blob Data (Owner|Contributor)/);
    }
  });

  it("turns a refused credential into a LedgerError with the status", async () => {
    const name = uniqueContainerName();
    const endpoint = process.env.AZURITE_BLOB_ENDPOINT ?? "";
    const wrongKey = new ContainerClient(
      `${endpoint}/${name}`,
      new StorageSharedKeyCredential(AZURITE_ACCOUNT, Buffer.from("wrong key").toString("base64")),
      {
        retryOptions: { maxTries: 1 },
      },
    );
    const error = await createBlobLedgerStore({ containerClient: wrongKey })
      .read(REGISTRY)
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(LedgerError);
    expect((error as LedgerError).details.statusCode).toBe(403);
    expect((error as LedgerError).message).not.toContain(AZURITE_KEY);
  });
});

describe("blobContainerFromSettings", () => {
  const created: ContainerClient[] = [];
  afterAll(async () => {
    for (const client of created) await client.deleteIfExists();
  });

  it("uses a connection string (Azurite, local runs)", async () => {
    const client = blobContainerFromSettings({
      connectionString: connectionString(),
      containerName: uniqueContainerName(),
    });
    created.push(client);
    await createBlobLedgerStore({ containerClient: client }).write(ledgerState());
    expect(await client.exists()).toBe(true);
  });

  it("uses the blob service URI with a token credential (identity-based AzureWebJobsStorage)", () => {
    const credential: TokenCredential = {
      getToken: (): Promise<AccessToken> =>
        Promise.resolve({ token: "unused", expiresOnTimestamp: Date.now() + 60_000 }),
    };
    const client = blobContainerFromSettings({
      blobServiceUri: "https://contosostate.blob.core.windows.net/",
      credential,
      containerName: "acr-allowlist-sync",
    });
    expect(client.url).toBe("https://contosostate.blob.core.windows.net/acr-allowlist-sync");
  });

  it("prefers the connection string when both are set", () => {
    const credential: TokenCredential = { getToken: () => Promise.resolve(null) };
    const client = blobContainerFromSettings({
      connectionString: connectionString(),
      blobServiceUri: "https://contosostate.blob.core.windows.net",
      credential,
      containerName: "abc",
    });
    expect(client.url).toBe(`${process.env.AZURITE_BLOB_ENDPOINT ?? ""}/abc`);
  });

  it("refuses a missing configuration, a URI without credential, a bad container name and a broken connection string", () => {
    expect(() => blobContainerFromSettings({ containerName: "acr-allowlist-sync" })).toThrow(ConfigError);
    expect(() =>
      blobContainerFromSettings({ blobServiceUri: "https://contosostate.blob.core.windows.net", containerName: "abc" }),
    ).toThrow(/credential/);
    expect(() =>
      blobContainerFromSettings({ connectionString: connectionString(), containerName: "Bad_Name" }),
    ).toThrow(/container name/);
    const broken = "AccountName=x;AccountKey=c2VjcmV0LXZhbHVl";
    const error = (() => {
      try {
        blobContainerFromSettings({ connectionString: broken, containerName: "abc" });
        return undefined;
      } catch (e) {
        return e;
      }
    })();
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as ConfigError).message).not.toContain("c2VjcmV0LXZhbHVl");
  });
});
