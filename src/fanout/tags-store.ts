import { createHash } from "node:crypto";
import { z } from "zod";
import type { ContainerClient } from "@azure/storage-blob";
import { FanoutMessageError, FanoutStorageError } from "../errors.js";
import { registryKey } from "../ledger/keys.js";
import { statusOf } from "../ledger/storage-status.js";
import { parseServiceTags } from "../servicetags/parse.js";
import type { ServiceTagsDocument, ServiceTagsOrigin } from "../servicetags/schema.js";

/**
 * The blobs fan-out shares between the scheduler and the queue workers, in the ledger container:
 * `servicetags/<sha256 of the file>.json` (the validated file, fetched once per run, written once
 * and never overwritten) and `runs/<runId>/<registry key>.done` (a registry of a run is done, so a
 * duplicate delivery of its message is skipped).
 */
/** What the source chain said about the file of one run, beside the file itself (stored per run: it changes from run to run). */
export type RunSource = Pick<ServiceTagsDocument, "lags" | "crossCheck" | "warnings" | "newestChangeNumberSeen">;

const runSourceSchema = z.strictObject({
  lags: z
    .array(
      z.strictObject({
        name: z.string(),
        fileChangeNumber: z.number().int(),
        apiChangeNumber: z.number().int(),
        used: z.enum(["file", "discovery-api"]),
      }),
    )
    .optional(),
  crossCheck: z.strictObject({ status: z.enum(["checked", "unavailable"]), detail: z.string() }).optional(),
  warnings: z.array(z.strictObject({ code: z.literal("stale-copy"), message: z.string() })).optional(),
  newestChangeNumberSeen: z.number().int().optional(),
});

export interface FanoutStore {
  /** Stores the file under its content hash; returns the blob name. Idempotent. */
  putServiceTags(document: ServiceTagsDocument): Promise<string>;
  /** Reads, checks the hash and re-validates the file (the blob could have been edited). */
  getServiceTags(blobName: string): Promise<ServiceTagsDocument>;
  /** Stores the run's `RunSource` (`runs/<runId>/source.json`, removed with the run markers). */
  putRunSource(runId: string, source: RunSource): Promise<void>;
  /** The run's `RunSource`; empty for a run scheduled without one. Read once per process and run. */
  getRunSource(runId: string): Promise<RunSource>;
  isDone(runId: string, registryId: string): Promise<boolean>;
  markDone(runId: string, registryId: string): Promise<void>;
}

/** Where the run markers live; infra/app.bicep's lifecycle rule deletes them after 2 days. */
export const RUN_MARKER_PREFIX = "runs/";

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
  const runSources = new Map<string, Promise<RunSource>>();
  const runSourceName = (runId: string): string => `${RUN_MARKER_PREFIX}${runId}/source.json`;
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

  const loadRunSource = async (runId: string): Promise<RunSource> => {
    const name = runSourceName(runId);
    let text: string;
    try {
      text = (await container.getBlobClient(name).downloadToBuffer()).toString("utf8");
    } catch (error) {
      // A run scheduled before run sources were stored: the file alone, as then.
      if (statusOf(error) === 404) return {};
      throw storageError(`Reading ${name}`, container.containerName, error);
    }
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch {
      parsed = undefined;
    }
    const result = runSourceSchema.safeParse(parsed);
    if (!result.success)
      throw new FanoutMessageError(`The run's source blob ${name} is not what the scheduler writes.`, {
        details: { blob: name },
        remedy: "Someone changed the blob; the next scheduled run stores it again.",
      });
    const { lags, crossCheck, warnings, newestChangeNumberSeen } = result.data;
    return {
      ...(lags === undefined ? {} : { lags }),
      ...(crossCheck === undefined ? {} : { crossCheck }),
      ...(warnings === undefined ? {} : { warnings }),
      ...(newestChangeNumberSeen === undefined ? {} : { newestChangeNumberSeen }),
    };
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

    async putRunSource(runId, source) {
      const name = runSourceName(runId);
      const body = JSON.stringify(runSourceSchema.parse(source));
      await ensure();
      try {
        await container.getBlockBlobClient(name).upload(body, Buffer.byteLength(body), {
          blobHTTPHeaders: { blobContentType: "application/json" },
        });
      } catch (error) {
        throw storageError(`Writing ${name}`, container.containerName, error);
      }
    },

    getRunSource(runId) {
      let entry = runSources.get(runId);
      if (entry === undefined) {
        entry = loadRunSource(runId);
        runSources.set(runId, entry);
        entry.catch(() => runSources.delete(runId));
        if (runSources.size > 8) runSources.delete(runSources.keys().next().value ?? runId);
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
        statusCode: statusOf(error),
      },
      remedy: "Check AzureWebJobsStorage and the identity's Storage Blob Data role; the message is retried.",
    },
  );
}
