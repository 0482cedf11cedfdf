import { createHash } from "node:crypto";
import type { ContainerClient } from "@azure/storage-blob";
import { FanoutMessageError, FanoutStorageError } from "../errors.js";
import { registryKey } from "../ledger/keys.js";
import { parseServiceTags } from "../servicetags/parse.js";
import type { ServiceTagsDocument, ServiceTagsOrigin } from "../servicetags/schema.js";

/**
 * The blobs fan-out shares between the scheduler and the queue workers, in the ledger container:
 * `servicetags/<sha256 of the file>.json` (the validated file, fetched once per run, written once
 * and never overwritten) and `runs/<runId>/<registry key>.done` (a registry of a run is done, so a
 * duplicate delivery of its message is skipped).
 */
export interface FanoutStore {
  /** Stores the file under its content hash; returns the blob name. Idempotent. */
  putServiceTags(document: ServiceTagsDocument): Promise<string>;
  /** Reads, checks the hash and re-validates the file (the blob could have been edited). */
  getServiceTags(blobName: string): Promise<ServiceTagsDocument>;
  isDone(runId: string, registryId: string): Promise<boolean>;
  markDone(runId: string, registryId: string): Promise<void>;
}

/** Where the run markers live; infra/app.bicep's lifecycle rule deletes them after 2 days. */
export const RUN_MARKER_PREFIX = "runs/";

const statusOf = (error: unknown): unknown => (error as { statusCode?: unknown }).statusCode;

function hashOf(fileJson: string): string {
  return createHash("sha256").update(fileJson).digest("hex");
}

export function createFanoutStore(container: ContainerClient): FanoutStore {
  let ready: Promise<unknown> | undefined;
  const ensure = (): Promise<unknown> => {
    ready ??= container.createIfNotExists().catch((error: unknown) => {
      ready = undefined;
      throw storageError("Creating the container", container.containerName, error);
    });
    return ready;
  };
  // Workers handle many messages of the same run: parse each file once per process.
  const cache = new Map<string, Promise<ServiceTagsDocument>>();
  const markerName = (runId: string, registryId: string): string =>
    `${RUN_MARKER_PREFIX}${runId}/${registryKey(registryId)}.done`;

  const load = async (blobName: string): Promise<ServiceTagsDocument> => {
    let text: string;
    try {
      text = (await container.getBlobClient(blobName).downloadToBuffer()).toString("utf8");
    } catch (error) {
      if (statusOf(error) === 404) {
        throw new FanoutMessageError(`The service-tags blob ${blobName} of this run is gone.`, {
          details: { blob: blobName },
          remedy: "The next scheduled run stores the file again; nothing to do.",
        });
      }
      throw storageError(`Reading ${blobName}`, container.containerName, error);
    }
    let stored: { origin?: ServiceTagsOrigin; file?: unknown };
    try {
      stored = JSON.parse(text) as typeof stored;
    } catch {
      stored = {};
    }
    const fileJson = JSON.stringify(stored.file ?? null);
    if (stored.origin === undefined || `servicetags/${hashOf(fileJson)}.json` !== blobName) {
      throw new FanoutMessageError(`The service-tags blob ${blobName} does not match its content hash.`, {
        details: { blob: blobName },
        remedy: "Someone changed the blob; the next scheduled run stores the file again.",
      });
    }
    const file = parseServiceTags(fileJson, { location: `blob ${blobName}`, expectedCloud: stored.origin.cloud });
    return { file, origin: stored.origin };
  };

  return {
    async putServiceTags(document) {
      const fileJson = JSON.stringify(document.file);
      const name = `servicetags/${hashOf(fileJson)}.json`;
      const body = JSON.stringify({ origin: document.origin, file: document.file });
      await ensure();
      try {
        await container.getBlockBlobClient(name).upload(body, Buffer.byteLength(body), {
          blobHTTPHeaders: { blobContentType: "application/json" },
          conditions: { ifNoneMatch: "*" },
        });
      } catch (error) {
        // 409/412: the same file is stored already (same content, same name).
        if (statusOf(error) !== 409 && statusOf(error) !== 412)
          throw storageError(`Writing ${name}`, container.containerName, error);
      }
      return name;
    },

    getServiceTags(blobName) {
      let entry = cache.get(blobName);
      if (entry === undefined) {
        entry = load(blobName);
        cache.set(blobName, entry);
        // A failed read is not cached; a few files at most are kept.
        entry.catch(() => cache.delete(blobName));
        if (cache.size > 4) cache.delete(cache.keys().next().value ?? blobName);
      }
      return entry;
    },

    async isDone(runId, registryId) {
      try {
        return await container.getBlobClient(markerName(runId, registryId)).exists();
      } catch (error) {
        throw storageError("Reading a run marker", container.containerName, error);
      }
    },

    async markDone(runId, registryId) {
      await ensure();
      try {
        await container.getBlockBlobClient(markerName(runId, registryId)).upload("", 0);
      } catch (error) {
        throw storageError("Writing a run marker", container.containerName, error);
      }
    },
  };
}

function storageError(operation: string, containerName: string, error: unknown): FanoutStorageError {
  return new FanoutStorageError(
    `${operation} in container '${containerName}' failed: ${error instanceof Error ? error.message.slice(0, 200) : String(error)}`,
    {
      details: {
        container: containerName,
        statusCode: typeof statusOf(error) === "number" ? (statusOf(error) as number) : undefined,
      },
      remedy: "Check AzureWebJobsStorage and the identity's Storage Blob Data role; the message is retried.",
    },
  );
}
