import { readFile } from "node:fs/promises";
import { resolve } from "node:path";
import type { ContainerClient } from "@azure/storage-blob";
import { z } from "zod";
import { LedgerCorruptError, LedgerError } from "../errors.js";
import { writeFileAtomically } from "./atomic-file.js";
import { registryKey } from "./keys.js";
import { statusOf } from "./storage-status.js";

/**
 * One report per registry kept with the ledger (the last canary result, the last run): a blob
 * `<folder>/<key>.json` in the ledger container (Azure), or one document `<ledger file><suffix>`
 * beside the CLI's ledger file. Last writer wins: a report is not state a sync depends on, so no
 * lock is taken and no ETag is checked.
 */
export interface RecordStore<T> {
  read(registryId: string): Promise<T | undefined>;
  write(record: T): Promise<void>;
}

/** What a kind of report is: its name in messages, where it lives, and its stored form. */
export interface RecordKind<T> {
  /** "canary result", "last run": in every message. */
  readonly noun: string;
  /** The blob folder in the ledger container. */
  readonly folder: string;
  /** The file beside the CLI's ledger file: `<ledger path><suffix>`. */
  readonly fileSuffix: string;
  /** Validates a stored record (a hand-edited or damaged document is refused, not half-read). */
  readonly schema: z.ZodType<T>;
  readonly toJson: (record: T) => Record<string, unknown>;
  readonly registryIdOf: (record: T) => string;
  /** What to do when storage refuses (names the setting and role). */
  readonly storageRemedy: string;
  /** What to do with a damaged record. */
  readonly corruptRemedy: string;
}

export function createBlobRecordStore<T>(container: ContainerClient, kind: RecordKind<T>, prefix = ""): RecordStore<T> {
  const blobOf = (registryId: string): string => `${prefix}${kind.folder}/${registryKey(registryId)}.json`;
  let ready: Promise<unknown> | undefined;
  return {
    async read(registryId) {
      const blob = blobOf(registryId);
      let text: string;
      try {
        text = (await container.getBlobClient(blob).downloadToBuffer()).toString("utf8");
      } catch (error) {
        if (statusOf(error) === 404) return undefined;
        throw storageError(kind, `Reading the ${kind.noun}`, `${container.containerName}/${blob}`, error);
      }
      return parse(kind, text, `blob '${container.containerName}/${blob}'`);
    },
    async write(record) {
      const blob = blobOf(kind.registryIdOf(record));
      const body = JSON.stringify(kind.toJson(record), null, 2);
      try {
        ready ??= container.createIfNotExists();
        await ready;
        await container.getBlockBlobClient(blob).upload(body, Buffer.byteLength(body), {
          blobHTTPHeaders: { blobContentType: "application/json" },
        });
      } catch (error) {
        ready = undefined;
        throw storageError(kind, `Writing the ${kind.noun}`, `${container.containerName}/${blob}`, error);
      }
    },
  };
}

const fileDocumentSchema = z.object({ schemaVersion: z.literal(1), results: z.record(z.string(), z.unknown()) });

export function createFileRecordStore<T>(ledgerPath: string, kind: RecordKind<T>): RecordStore<T> {
  const path = `${resolve(ledgerPath)}${kind.fileSuffix}`;
  const readDocument = async (): Promise<Record<string, unknown>> => {
    let text: string;
    try {
      text = await readFile(path, "utf8");
    } catch (error) {
      if ((error as { code?: unknown }).code === "ENOENT") return {};
      throw storageError(kind, `Reading the ${kind.noun} file`, path, error);
    }
    let raw: unknown;
    try {
      raw = JSON.parse(text);
    } catch {
      raw = undefined;
    }
    const parsed = fileDocumentSchema.safeParse(raw);
    if (!parsed.success) throw corrupt(kind, `The ${kind.noun} file '${path}' is not a ${kind.noun} document.`, path);
    return parsed.data.results;
  };
  return {
    async read(registryId) {
      const raw = (await readDocument())[registryId.toLowerCase()];
      return raw === undefined ? undefined : check(kind, raw, `the entry for ${registryId} in '${path}'`);
    },
    async write(record) {
      const key = kind.registryIdOf(record).toLowerCase();
      const results = { ...(await readDocument()), [key]: kind.toJson(record) };
      try {
        await writeFileAtomically(path, `${JSON.stringify({ schemaVersion: 1, results }, null, 2)}\n`);
      } catch (error) {
        throw storageError(kind, `Writing the ${kind.noun} file`, path, error);
      }
    },
  };
}

function parse<T>(kind: RecordKind<T>, text: string, where: string): T {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch {
    throw corrupt(kind, `The ${kind.noun} ${where} is not valid JSON.`, where);
  }
  return check(kind, raw, where);
}

function check<T>(kind: RecordKind<T>, raw: unknown, where: string): T {
  const parsed = kind.schema.safeParse(raw);
  if (parsed.success) return parsed.data;
  const issue = parsed.error.issues[0];
  const path = issue === undefined || issue.path.length === 0 ? "(root)" : issue.path.join(".");
  throw corrupt(
    kind,
    `The ${kind.noun} ${where} does not have the expected shape (${path}: ${issue?.message ?? "invalid"}).`,
    where,
  );
}

function corrupt<T>(kind: RecordKind<T>, message: string, where: string): LedgerCorruptError {
  return new LedgerCorruptError(message, { details: { document: kind.noun, where }, remedy: kind.corruptRemedy });
}

function storageError<T>(kind: RecordKind<T>, operation: string, where: string, error: unknown): LedgerError {
  const status = statusOf(error);
  const code = (error as { code?: unknown } | null)?.code;
  const what = status !== undefined ? `HTTP ${status}` : typeof code === "string" ? code : "no answer";
  return new LedgerError(`${operation} failed for '${where}' (${what}).`, {
    details: { operation, where, statusCode: status },
    remedy: kind.storageRemedy,
  });
}
