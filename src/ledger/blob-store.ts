import { hostname } from "node:os";
import { setTimeout as delay } from "node:timers/promises";
import type { TokenCredential } from "@azure/identity";
import {
  BlobServiceClient,
  type BlobLeaseClient,
  type ContainerClient,
  type StoragePipelineOptions,
} from "@azure/storage-blob";
import {
  ConfigError,
  LedgerConflictError,
  LedgerCorruptError,
  LedgerError,
  LockHeldError,
  LockLostError,
} from "../errors.js";
import { registryKey, sameRegistry } from "./keys.js";
import {
  auditEntryToJson,
  checkWritable,
  ledgerStateToJson,
  parseAuditEntry,
  parseFreezeState,
  parseLedgerState,
  type DocumentLocation,
} from "./schema.js";
import type { AuditEntry, LedgerState, LedgerStore, LockHandle } from "./types.js";
import { statusOf } from "./storage-status.js";

const STORAGE_REMEDY =
  "Check AzureWebJobsStorage (connection string, or AzureWebJobsStorage__blobServiceUri with a managed identity) and that the identity has the Storage Blob Data Owner or Storage Blob Data Contributor role on the account.";

export interface BlobLedgerStoreOptions {
  readonly containerClient: ContainerClient;
  /** Folder inside the container, e.g. `acr-allowlist-sync/`. Default: the container root. */
  readonly prefix?: string | undefined;
  /** Lease duration of the lock blob, 15–60 s. Default 60. */
  readonly leaseSeconds?: number | undefined;
  /** How often a held lease is renewed. Default a third of the lease. */
  readonly renewEveryMs?: number | undefined;
  /** How often `acquireLock` retries while another run holds the lease. Default 1 000. */
  readonly pollMs?: number | undefined;
  /** Who takes locks, stored on the lock blob so a waiting run can say who holds it. Default `<host>:<pid>`. */
  readonly owner?: string | undefined;
}

/**
 * The ledger store in a blob container (Azure, or Azurite in tests). Layout under `prefix`:
 * `ledgers/<key>.json` (one per registry), `audit/<key>/<auditId>.json` (one blob per entry, created
 * with If-None-Match: * so never overwritten) and `locks/<key>.lock` (leased while a run holds the
 * registry). `<key>` is `registryKey(registryId)`.
 */
export function createBlobLedgerStore(options: BlobLedgerStoreOptions): LedgerStore {
  const container = options.containerClient;
  const containerName = container.containerName;
  const prefix = normalizePrefix(options.prefix);
  const leaseSeconds = options.leaseSeconds ?? 60;
  if (!(leaseSeconds === -1 || (Number.isInteger(leaseSeconds) && leaseSeconds >= 15 && leaseSeconds <= 60))) {
    throw new ConfigError(`The lock lease must last 15 to 60 seconds, not ${leaseSeconds}.`, {
      details: { leaseSeconds },
    });
  }
  const renewEveryMs = options.renewEveryMs ?? Math.max(1000, Math.floor((leaseSeconds * 1000) / 3));
  const pollMs = options.pollMs ?? 1000;
  const owner = headerSafe(options.owner ?? `${hostname()}:${process.pid}`);

  let ready: Promise<void> | undefined;
  const ensureContainer = (): Promise<void> => {
    ready ??= container.createIfNotExists().then(
      () => undefined,
      (error: unknown) => {
        ready = undefined;
        throw storageError("Creating the ledger container", containerName, undefined, error);
      },
    );
    return ready;
  };

  const ledgerBlob = (registryId: string): string => `${prefix}ledgers/${key(registryId)}.json`;
  const auditFolder = (registryId: string): string => `${prefix}audit/${key(registryId)}/`;
  const lockBlob = (registryId: string): string => `${prefix}locks/${key(registryId)}.lock`;
  const freezeBlob = (registryId: string): string => `${prefix}freezes/${key(registryId)}.json`;
  const where = (blob: string): DocumentLocation => ({
    description: `blob '${containerName}/${blob}'`,
    details: { container: containerName, blob },
  });

  const download = async (blob: string, operation: string): Promise<string | undefined> => {
    try {
      return (await container.getBlobClient(blob).downloadToBuffer()).toString("utf8");
    } catch (error) {
      if (statusOf(error) === 404) return undefined;
      throw storageError(operation, containerName, blob, error);
    }
  };

  // The ETag of each ledger blob as this store last read or wrote it (null: it did not exist), so
  // that a write replaces exactly what was read and a lost race is an error, never an overwrite.
  const ledgerETags = new Map<string, string | null>();

  return {
    async read(registryId) {
      await ensureContainer();
      const blob = ledgerBlob(registryId);
      let text: string | undefined;
      try {
        const response = await container.getBlobClient(blob).download(0);
        text = (await readStream(response.readableStreamBody)).toString("utf8");
        ledgerETags.set(blob, response.etag ?? null);
      } catch (error) {
        if (statusOf(error) !== 404) throw storageError("Reading the ledger", containerName, blob, error);
        ledgerETags.set(blob, null);
      }
      return text === undefined ? undefined : parseLedgerState(text, where(blob));
    },

    async write(state: LedgerState) {
      const json = ledgerStateToJson(state);
      checkWritable("ledger", json, state.registryId);
      await ensureContainer();
      const blob = ledgerBlob(state.registryId);
      const body = JSON.stringify(json, null, 2);
      const known = ledgerETags.get(blob);
      // Never read by this store (a tool writing a ledger outright): unconditional, as before.
      const conditions = known === undefined ? undefined : known === null ? { ifNoneMatch: "*" } : { ifMatch: known };
      try {
        const response = await container.getBlockBlobClient(blob).upload(body, Buffer.byteLength(body), {
          blobHTTPHeaders: { blobContentType: "application/json" },
          ...(conditions === undefined ? {} : { conditions }),
        });
        ledgerETags.set(blob, response.etag ?? null);
      } catch (error) {
        const status = statusOf(error);
        if (conditions !== undefined && (status === 412 || status === 409)) {
          ledgerETags.delete(blob);
          throw new LedgerConflictError(
            `The ledger of ${state.registryId} changed in '${containerName}/${blob}' after this run read it: another writer won the race, and its ledger was kept.`,
            {
              details: {
                registryId: state.registryId,
                container: containerName,
                blob,
                statusCode: status,
                condition: known === null ? "if-none-match *" : "if-match",
              },
              remedy:
                "Nothing was overwritten. Run again: the next run reads the current ledger. If it repeats, look for a second deployment syncing the same registry.",
              cause: error,
            },
          );
        }
        throw storageError("Writing the ledger", containerName, blob, error);
      }
    },

    async readFreeze(registryId) {
      await ensureContainer();
      const blob = freezeBlob(registryId);
      const text = await download(blob, "Reading the freeze");
      return text === undefined ? undefined : parseFreezeState(text, where(blob));
    },

    async writeFreeze(registryId, freeze) {
      await ensureContainer();
      const blob = freezeBlob(registryId);
      try {
        if (freeze === undefined) {
          await container.getBlobClient(blob).deleteIfExists();
          return;
        }
        const body = JSON.stringify(freeze, null, 2);
        await container.getBlockBlobClient(blob).upload(body, Buffer.byteLength(body), {
          blobHTTPHeaders: { blobContentType: "application/json" },
        });
      } catch (error) {
        throw storageError(
          freeze === undefined ? "Removing the freeze" : "Writing the freeze",
          containerName,
          blob,
          error,
        );
      }
    },

    async appendAudit(entry: AuditEntry) {
      const json = auditEntryToJson(entry);
      checkWritable("audit entry", json, entry.registryId);
      await ensureContainer();
      const blob = `${auditFolder(entry.registryId)}${entry.id}.json`;
      const body = JSON.stringify(json, null, 2);
      try {
        await container.getBlockBlobClient(blob).upload(body, Buffer.byteLength(body), {
          blobHTTPHeaders: { blobContentType: "application/json" },
          conditions: { ifNoneMatch: "*" },
        });
      } catch (error) {
        if (statusOf(error) === 409 || statusOf(error) === 412) {
          throw new LedgerError(
            `Audit entry ${entry.id} of ${entry.registryId} exists already in '${containerName}/${blob}'; audit entries are never overwritten.`,
            {
              details: { registryId: entry.registryId, auditId: entry.id, container: containerName, blob },
              remedy: "Create the entry with a new id (createAuditId).",
              cause: error,
            },
          );
        }
        throw storageError("Appending an audit entry", containerName, blob, error);
      }
    },

    async listAudit(registryId) {
      await ensureContainer();
      const folder = auditFolder(registryId);
      const names: string[] = [];
      try {
        for await (const item of container.listBlobsFlat({ prefix: folder })) {
          if (item.name.endsWith(".json")) names.push(item.name);
        }
      } catch (error) {
        throw storageError("Listing the audit entries", containerName, folder, error);
      }
      names.sort();
      const entries: AuditEntry[] = [];
      // A few at a time: enough to hide latency, gentle on the account.
      for (let i = 0; i < names.length; i += 8) {
        const batch = names.slice(i, i + 8);
        const texts = await Promise.all(batch.map((name) => download(name, "Reading an audit entry")));
        batch.forEach((name, j) => {
          const text = texts[j];
          if (text === undefined) return; // deleted between listing and reading
          const entry = parseAuditEntry(text, where(name));
          if (!sameRegistry(entry.registryId, registryId)) {
            throw new LedgerCorruptError(
              `The audit entry blob '${containerName}/${name}' belongs to ${entry.registryId}, not to ${registryId}.`,
              {
                details: { container: containerName, blob: name, registryId, entryRegistryId: entry.registryId },
                remedy: "Inspect the audit entry and move it to the folder of its registry, or delete it.",
              },
            );
          }
          entries.push(entry);
        });
      }
      return entries.sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
    },

    async acquireLock(registryId, { waitMs }) {
      await ensureContainer();
      const blob = lockBlob(registryId);
      const blobClient = container.getBlockBlobClient(blob);
      const lease = blobClient.getBlobLeaseClient();
      const deadline = Date.now() + Math.max(0, waitMs);
      // The holder's name (metadata) is only a courtesy for the messages of waiting runs.
      const holder = (): Record<string, string> => ({ owner, acquiredat: new Date().toISOString() });
      // Set by the lease that created the lock blob: its metadata names this run already.
      let named = false;
      let creations = 0;
      // The lock blob exists after a registry's first run: the lease is tried first (one request
      // in the steady state), and the blob is created only when the lease finds none.
      for (;;) {
        try {
          await lease.acquireLease(leaseSeconds);
          break;
        } catch (error) {
          const status = statusOf(error);
          // A blob deleted again right after each creation: give up rather than loop.
          if (status === 404 && (creations += 1) <= 3) {
            try {
              await blobClient.upload("", 0, { metadata: holder(), conditions: { ifNoneMatch: "*" } });
              named = true;
            } catch (createError) {
              // 409/412: another run created it meanwhile; take the lease as usual.
              if (statusOf(createError) !== 409 && statusOf(createError) !== 412)
                throw storageError("Creating the lock blob", containerName, blob, createError);
            }
            continue;
          }
          named = false;
          if (status !== 409) throw storageError("Taking the lease on the lock blob", containerName, blob, error);
          const remaining = deadline - Date.now();
          if (remaining <= 0) throw await lockHeld(registryId, blob, waitMs);
          await delay(Math.min(pollMs, remaining));
        }
      }
      if (!named) {
        try {
          await blobClient.setMetadata(holder(), { conditions: { leaseId: lease.leaseId } });
        } catch {
          // Best effort, as above.
        }
      }
      return holdLease(lease, renewEveryMs, leaseSeconds, { containerName, blob });
    },
  };

  async function lockHeld(registryId: string, blob: string, waitMs: number): Promise<LockHeldError> {
    let holder = "";
    let since = "";
    try {
      const properties = await container.getBlobClient(blob).getProperties();
      holder = properties.metadata?.owner ?? "";
      since = properties.metadata?.acquiredat ?? "";
    } catch {
      // Best effort, as above.
    }
    const by = holder === "" ? "another run" : `${holder}${since === "" ? "" : ` (since ${since})`}`;
    return new LockHeldError(
      `Registry ${registryId} is locked by ${by}: the lease on '${containerName}/${blob}' was still held after waiting ${waitMs} ms.`,
      {
        details: {
          registryId,
          container: containerName,
          blob,
          waitedMs: waitMs,
          holder: holder || undefined,
          since: since || undefined,
        },
        remedy: `Another sync of this registry is running; retry later. A crashed run's lease expires by itself within ${leaseSeconds === -1 ? "never (infinite lease: break it manually)" : `${leaseSeconds} s`}.`,
      },
    );
  }
}

function holdLease(
  lease: BlobLeaseClient,
  renewEveryMs: number,
  leaseSeconds: number,
  where: { containerName: string; blob: string },
): LockHandle {
  let released = false;
  let lost: { at: string; reason: string } | undefined;
  const timer =
    leaseSeconds === -1
      ? undefined
      : setInterval(() => {
          // A failed renewal means the lease may be gone (broken, expired during a stall, taken by
          // another run): from then on the holder must not write, see assertHeld.
          lease.renewLease().catch((error: unknown) => {
            const status = statusOf(error);
            lost ??= {
              at: new Date().toISOString(),
              reason:
                status === undefined
                  ? "no answer"
                  : `HTTP ${status}${storageCode(error) === undefined ? "" : ` ${storageCode(error)}`}`,
            };
          });
        }, renewEveryMs);
  timer?.unref();
  return {
    assertHeld() {
      if (lost === undefined) return;
      throw new LockLostError(
        `The lease on '${where.containerName}/${where.blob}' could not be renewed at ${lost.at} (${lost.reason}): another run may hold the registry now, so this run stops before writing.`,
        {
          details: { container: where.containerName, blob: where.blob, lostAt: lost.at, reason: lost.reason },
          remedy:
            "Nothing more was written by this run. Run again; if renewals keep failing, check the storage account's availability and the identity's Storage Blob Data Owner role.",
        },
      );
    },
    async release() {
      if (released) return;
      released = true;
      if (timer !== undefined) clearInterval(timer);
      try {
        await lease.releaseLease();
      } catch (error) {
        // Already expired or broken: nothing left to release.
        if (statusOf(error) === 409 || statusOf(error) === 412) return;
        throw storageError("Releasing the lease on the lock blob", where.containerName, where.blob, error);
      }
    },
  };
}

export interface BlobContainerSettings {
  /** `AzureWebJobsStorage` as a connection string (Azurite, local runs, or key-based accounts). */
  readonly connectionString?: string | undefined;
  /** `AzureWebJobsStorage__blobServiceUri`, used with `credential` (identity-based connection in Azure). */
  readonly blobServiceUri?: string | undefined;
  readonly credential?: TokenCredential | undefined;
  readonly containerName: string;
  /** Passed to the client, e.g. `retryOptions`. */
  readonly clientOptions?: StoragePipelineOptions | undefined;
}

/**
 * The ledger container from the Functions storage settings: a connection string when given,
 * otherwise the blob service URI with a token credential. Throws `ConfigError` (never echoing the
 * connection string) when neither is usable.
 */
export function blobContainerFromSettings(settings: BlobContainerSettings): ContainerClient {
  const name = settings.containerName;
  if (!/^(?=.{3,63}$)[a-z0-9](?:[a-z0-9]|-(?!-))*[a-z0-9]$/.test(name)) {
    throw new ConfigError(`'${name}' is not a valid blob container name.`, {
      details: { containerName: name },
      remedy: "Use 3 to 63 lower-case letters, digits and single hyphens, starting and ending with a letter or digit.",
    });
  }
  const connectionString = settings.connectionString?.trim();
  if (connectionString !== undefined && connectionString !== "") {
    let service: BlobServiceClient;
    try {
      service = BlobServiceClient.fromConnectionString(connectionString, settings.clientOptions);
    } catch {
      throw new ConfigError("The storage connection string (AzureWebJobsStorage) cannot be parsed.", {
        remedy:
          "Set AzureWebJobsStorage to a storage account connection string, or use AzureWebJobsStorage__blobServiceUri with a managed identity.",
      });
    }
    return service.getContainerClient(name);
  }
  const uri = settings.blobServiceUri?.trim();
  if (uri !== undefined && uri !== "") {
    if (settings.credential === undefined) {
      throw new ConfigError("A blob service URI needs a credential.", {
        remedy: "Pass the managed identity credential with AzureWebJobsStorage__blobServiceUri.",
      });
    }
    let url: URL;
    try {
      url = new URL(uri);
    } catch {
      throw new ConfigError(`The blob service URI '${uri}' is not a valid URL.`, {
        details: { blobServiceUri: uri },
        remedy: "Set AzureWebJobsStorage__blobServiceUri to https://<account>.blob.core.windows.net.",
      });
    }
    return new BlobServiceClient(
      url.toString().replace(/\/$/, ""),
      settings.credential,
      settings.clientOptions,
    ).getContainerClient(name);
  }
  throw new ConfigError("No ledger storage is configured.", {
    remedy: "Set AzureWebJobsStorage (connection string) or AzureWebJobsStorage__blobServiceUri (identity-based).",
  });
}

async function readStream(stream: NodeJS.ReadableStream | undefined): Promise<Buffer> {
  if (stream === undefined) return Buffer.alloc(0);
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(typeof chunk === "string" ? Buffer.from(chunk) : chunk);
  return Buffer.concat(chunks);
}

function key(registryId: string): string {
  try {
    return registryKey(registryId);
  } catch {
    throw new LedgerError("A registry id is empty; the ledger cannot name its blob.", { details: { registryId } });
  }
}

function normalizePrefix(prefix: string | undefined): string {
  const trimmed = (prefix ?? "").replace(/^\/+|\/+$/g, "");
  return trimmed === "" ? "" : `${trimmed}/`;
}

function headerSafe(value: string): string {
  return value.replace(/[^\x20-\x7e]/g, "?").slice(0, 200);
}

function storageCode(error: unknown): string | undefined {
  const details = (error as { details?: { errorCode?: unknown } } | null)?.details;
  if (typeof details?.errorCode === "string") return details.errorCode;
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === "string" ? code : undefined;
}

/** Maps a storage SDK failure to a `LedgerError` that names the container and blob (never the URL, which may carry a SAS). */
function storageError(operation: string, containerName: string, blob: string | undefined, error: unknown): LedgerError {
  const status = statusOf(error);
  const code = storageCode(error);
  const what = status === undefined ? (code ?? "no answer") : `HTTP ${status}${code === undefined ? "" : ` ${code}`}`;
  const target = blob === undefined ? `container '${containerName}'` : `'${containerName}/${blob}'`;
  return new LedgerError(`${operation} failed for ${target} (${what}).`, {
    details: { operation, container: containerName, blob, statusCode: status, errorCode: code },
    remedy: STORAGE_REMEDY,
    cause: error,
  });
}
