import { mkdir, open, readFile, rename, unlink } from "node:fs/promises";
import { randomBytes } from "node:crypto";
import { dirname, resolve } from "node:path";
import type { ContainerClient } from "@azure/storage-blob";
import { z } from "zod";
import {
  canaryResultFrom,
  canaryResultSchema,
  canaryResultToJson,
  type CanaryResult,
  type CanaryResultStore,
} from "../canary/result.js";
import { LedgerCorruptError, LedgerError } from "../errors.js";
import { registryKey } from "./keys.js";

/**
 * The last canary result of each registry, kept with the ledger: a blob `canary/<key>.json` in the
 * ledger container (Azure), or `<ledger file>.canary.json` beside the CLI's ledger file. Last
 * writer wins: a result is a report, not state the next sync depends on, so no lock is taken.
 */

const STORAGE_REMEDY =
  "Check AzureWebJobsStorage and the identity's Storage Blob Data role; the canary result is a report and the sync does not need it.";
const CORRUPT_REMEDY = "Delete the stored canary result; the next canary writes a new one. The sync does not read it.";

export function createBlobCanaryStore(container: ContainerClient, prefix = ""): CanaryResultStore {
  const blobOf = (registryId: string): string => `${prefix}canary/${registryKey(registryId)}.json`;
  let ready: Promise<unknown> | undefined;
  return {
    async read(registryId) {
      const blob = blobOf(registryId);
      let text: string;
      try {
        text = (await container.getBlobClient(blob).downloadToBuffer()).toString("utf8");
      } catch (error) {
        if (statusOf(error) === 404) return undefined;
        throw storageError("Reading the last canary result", `${container.containerName}/${blob}`, error);
      }
      return parse(text, `blob '${container.containerName}/${blob}'`);
    },
    async write(result) {
      const blob = blobOf(result.registryId);
      const body = JSON.stringify(canaryResultToJson(result), null, 2);
      try {
        ready ??= container.createIfNotExists();
        await ready;
        await container.getBlockBlobClient(blob).upload(body, Buffer.byteLength(body), {
          blobHTTPHeaders: { blobContentType: "application/json" },
        });
      } catch (error) {
        ready = undefined;
        throw storageError("Writing the canary result", `${container.containerName}/${blob}`, error);
      }
    },
  };
}

const fileDocumentSchema = z.object({ schemaVersion: z.literal(1), results: z.record(z.string(), z.unknown()) });

export function createFileCanaryStore(ledgerPath: string): CanaryResultStore {
  const path = `${resolve(ledgerPath)}.canary.json`;
  const readDocument = async (): Promise<Record<string, unknown>> => {
    let text: string;
    try {
      text = await readFile(path, "utf8");
    } catch (error) {
      if ((error as { code?: unknown }).code === "ENOENT") return {};
      throw storageError("Reading the canary results", path, error);
    }
    let raw: unknown;
    try {
      raw = JSON.parse(text);
    } catch {
      raw = undefined;
    }
    const parsed = fileDocumentSchema.safeParse(raw);
    if (!parsed.success) throw corrupt(`The canary results file '${path}' is not a canary results document.`, path);
    return parsed.data.results;
  };
  return {
    async read(registryId) {
      const raw = (await readDocument())[registryId.toLowerCase()];
      return raw === undefined ? undefined : check(raw, `the entry for ${registryId} in '${path}'`);
    },
    async write(result) {
      const results = { ...(await readDocument()), [result.registryId.toLowerCase()]: canaryResultToJson(result) };
      const temp = `${path}.${process.pid}.${randomBytes(4).toString("hex")}.tmp`;
      try {
        await mkdir(dirname(path), { recursive: true });
        const handle = await open(temp, "wx", 0o600);
        try {
          await handle.writeFile(`${JSON.stringify({ schemaVersion: 1, results }, null, 2)}\n`, "utf8");
        } finally {
          await handle.close();
        }
        await rename(temp, path);
      } catch (error) {
        await unlink(temp).catch(() => undefined);
        throw storageError("Writing the canary results", path, error);
      }
    },
  };
}

function parse(text: string, where: string): CanaryResult {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch {
    throw corrupt(`The canary result ${where} is not valid JSON.`, where);
  }
  return check(raw, where);
}

function check(raw: unknown, where: string): CanaryResult {
  const parsed = canaryResultSchema.safeParse(raw);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const path = issue === undefined || issue.path.length === 0 ? "(root)" : issue.path.join(".");
    throw corrupt(
      `The canary result ${where} does not have the expected shape (${path}: ${issue?.message ?? "invalid"}).`,
      where,
    );
  }
  return canaryResultFrom(parsed.data);
}

function corrupt(message: string, where: string): LedgerCorruptError {
  return new LedgerCorruptError(message, { details: { document: "canary result", where }, remedy: CORRUPT_REMEDY });
}

function statusOf(error: unknown): number | undefined {
  const status = (error as { statusCode?: unknown } | null)?.statusCode;
  return typeof status === "number" ? status : undefined;
}

function storageError(operation: string, where: string, error: unknown): LedgerError {
  const status = statusOf(error);
  const code = (error as { code?: unknown } | null)?.code;
  const what = status !== undefined ? `HTTP ${status}` : typeof code === "string" ? code : "no answer";
  return new LedgerError(`${operation} failed for '${where}' (${what}).`, {
    details: { operation, where, statusCode: status },
    remedy: STORAGE_REMEDY,
  });
}
