import type { ContainerClient } from "@azure/storage-blob";
import {
  canaryResultFrom,
  canaryResultSchema,
  canaryResultToJson,
  type CanaryResult,
  type CanaryResultStore,
} from "../canary/result.js";
import { createBlobRecordStore, createFileRecordStore, type RecordKind } from "./record-store.js";

/**
 * The last canary result of each registry, kept with the ledger: a blob `canary/<key>.json` in the
 * ledger container (Azure), or `<ledger file>.canary.json` beside the CLI's ledger file.
 */
const CANARY_RESULT: RecordKind<CanaryResult> = {
  noun: "canary result",
  folder: "canary",
  fileSuffix: ".canary.json",
  schema: canaryResultSchema.transform(canaryResultFrom),
  toJson: canaryResultToJson,
  registryIdOf: (result) => result.registryId,
  storageRemedy:
    "Check AzureWebJobsStorage and the identity's Storage Blob Data role; the canary result is a report and the sync does not need it.",
  corruptRemedy: "Delete the stored canary result; the next canary writes a new one. The sync does not read it.",
};

export function createBlobCanaryStore(container: ContainerClient, prefix = ""): CanaryResultStore {
  return createBlobRecordStore(container, CANARY_RESULT, prefix);
}

export function createFileCanaryStore(ledgerPath: string): CanaryResultStore {
  return createFileRecordStore(ledgerPath, CANARY_RESULT);
}
