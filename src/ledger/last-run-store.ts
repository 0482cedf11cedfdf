import type { ContainerClient } from "@azure/storage-blob";
import { lastRunSchema, lastRunToJson, type LastRun, type LastRunStore } from "../sync/last-run.js";
import { createBlobRecordStore, createFileRecordStore, type RecordKind } from "./record-store.js";

/**
 * The last run of each registry, kept with the ledger: a blob `lastrun/<key>.json` in the ledger
 * container (Azure; not under `runs/`, the fan-out's short-lived run markers), or
 * `<ledger file>.runs.json` beside the CLI's ledger file.
 */
const LAST_RUN: RecordKind<LastRun> = {
  noun: "last run",
  folder: "lastrun",
  fileSuffix: ".runs.json",
  schema: lastRunSchema,
  toJson: lastRunToJson,
  registryIdOf: (run) => run.registryId,
  storageRemedy:
    "Check AzureWebJobsStorage and the identity's Storage Blob Data role; the last run is a report and the sync does not need it.",
  corruptRemedy: "Delete the stored last run; the next run writes a new one. The sync does not read it.",
};

export function createBlobLastRunStore(container: ContainerClient, prefix = ""): LastRunStore {
  return createBlobRecordStore(container, LAST_RUN, prefix);
}

export function createFileLastRunStore(ledgerPath: string): LastRunStore {
  return createFileRecordStore(ledgerPath, LAST_RUN);
}
