import { randomBytes } from "node:crypto";
import { appendFile, mkdir, open, readFile, unlink } from "node:fs/promises";
import { hostname } from "node:os";
import { dirname, resolve } from "node:path";
import { setTimeout as delay } from "node:timers/promises";
import { z } from "zod";
import { LedgerCorruptError, LedgerError, LockHeldError } from "../errors.js";
import { writeFileAtomically } from "./atomic-file.js";
import { sameRegistry } from "./keys.js";
import {
  auditEntryToJson,
  checkWritable,
  LEDGER_SCHEMA_VERSION,
  ledgerStateFrom,
  ledgerStateToJson,
  parseAuditEntry,
  parseFreezeState,
  showStoredValue,
  type DocumentLocation,
} from "./schema.js";
import type { AuditEntry, LedgerState, LedgerStore, LockHandle } from "./types.js";

export interface FileLedgerStoreOptions {
  /** The ledger file; the audit trail is `<path>.audit.jsonl` and the lock `<path>.lock`. */
  readonly path: string;
  /** How often `acquireLock` looks again while another run holds the lock. Default 200. */
  readonly pollMs?: number | undefined;
  /** Who takes the lock (e.g. `cli:alice`), written into the lock file for the messages of waiting runs. Default `pid <pid>`. */
  readonly owner?: string | undefined;
}

const lockFileSchema = z.object({
  pid: z.number().int().positive(),
  host: z.string(),
  registryId: z.string(),
  owner: z.string(),
  acquiredAt: z.string(),
  token: z.string(),
});
type LockFile = z.infer<typeof lockFileSchema>;

const FILE_REMEDY =
  "Check the ledger path (--state) and that this user may create, write and rename files in its folder.";

/**
 * The ledger store of the CLI: one JSON file holding every registry's ledger (replaced atomically:
 * temp file, fsync, rename), an append-only JSON Lines audit trail beside it, and one exclusive lock
 * file for all registries (the ledger file is shared, so one writer at a time).
 */
export function createFileLedgerStore(options: FileLedgerStoreOptions): LedgerStore {
  const path = resolve(options.path);
  const auditPath = `${path}.audit.jsonl`;
  const lockPath = `${path}.lock`;
  const freezePath = `${path}.freezes.json`;
  const pollMs = options.pollMs ?? 200;
  const owner = options.owner ?? `pid ${process.pid}`;
  const ledgerWhere = (registryId?: string): DocumentLocation => ({
    description: registryId === undefined ? `file '${path}'` : `for ${registryId} in file '${path}'`,
    details: { path, ...(registryId === undefined ? {} : { registryId }) },
  });

  /** The whole ledger document; entries are validated when read, so one bad entry spoils only its registry. */
  const readDocument = async (): Promise<Record<string, unknown>> => {
    const text = await readText(path, "Reading the ledger file");
    if (text === undefined) return {};
    let raw: unknown;
    try {
      // An editor may have saved it with a BOM; the blob documents accept one too (parseJson).
      raw = JSON.parse(text.charCodeAt(0) === 0xfeff ? text.slice(1) : text);
    } catch (error) {
      throw corruptFile(
        `The ledger file '${path}' is not valid JSON (${error instanceof Error ? error.message : String(error)}).`,
        path,
        error,
      );
    }
    if (typeof raw !== "object" || raw === null || Array.isArray(raw))
      throw corruptFile(`The ledger file '${path}' is not a JSON object.`, path);
    const document = raw as { schemaVersion?: unknown; ledgers?: unknown };
    if (document.schemaVersion !== LEDGER_SCHEMA_VERSION) {
      throw corruptFile(
        `The ledger file '${path}' has schemaVersion ${showStoredValue(document.schemaVersion)}; this version of acr-allowlist-sync reads only ${LEDGER_SCHEMA_VERSION}.`,
        path,
      );
    }
    if (typeof document.ledgers !== "object" || document.ledgers === null || Array.isArray(document.ledgers)) {
      throw corruptFile(`The ledger file '${path}' has no 'ledgers' object.`, path);
    }
    return document.ledgers as Record<string, unknown>;
  };

  return {
    async read(registryId) {
      const ledgers = await readDocument();
      const raw = ledgers[fileKey(registryId)];
      return raw === undefined ? undefined : ledgerStateFrom(raw, ledgerWhere(registryId));
    },

    async write(state: LedgerState) {
      const json = ledgerStateToJson(state);
      checkWritable("ledger", json, state.registryId);
      const ledgers = await readDocument();
      const next = { schemaVersion: LEDGER_SCHEMA_VERSION, ledgers: { ...ledgers, [fileKey(state.registryId)]: json } };
      await writeAtomically(path, serializeDocument(next, path));
    },

    async readFreeze(registryId) {
      const freezes = await readFreezes(freezePath);
      const raw = freezes[fileKey(registryId)];
      return raw === undefined
        ? undefined
        : parseFreezeState(raw, {
            description: `for ${registryId} in file '${freezePath}'`,
            details: { path: freezePath },
          });
    },

    async writeFreeze(registryId, freeze) {
      const { [fileKey(registryId)]: _previous, ...others } = await readFreezes(freezePath);
      const freezes = freeze === undefined ? others : { ...others, [fileKey(registryId)]: freeze };
      await writeAtomically(
        freezePath,
        JSON.stringify({ schemaVersion: LEDGER_SCHEMA_VERSION, freezes }, null, 2) + "\n",
      );
    },

    async appendAudit(entry: AuditEntry) {
      const json = auditEntryToJson(entry);
      checkWritable("audit entry", json, entry.registryId);
      const text = (await readText(auditPath, "Reading the audit file")) ?? "";
      if (text.length > 0 && !text.endsWith("\n")) {
        throw corruptAudit(
          `The audit file '${auditPath}' ends in an incomplete line; appending would merge two entries.`,
          auditPath,
          undefined,
        );
      }
      if (parseAuditLines(text, auditPath).some((existing) => existing.id === entry.id)) {
        throw new LedgerError(
          `Audit entry ${entry.id} exists already in '${auditPath}'; audit entries are never overwritten.`,
          {
            details: { registryId: entry.registryId, auditId: entry.id, path: auditPath },
            remedy: "Create the entry with a new id (createAuditId).",
          },
        );
      }
      try {
        await mkdir(dirname(auditPath), { recursive: true });
        await appendFile(auditPath, `${JSON.stringify(json)}\n`, { encoding: "utf8", flag: "a" });
      } catch (error) {
        throw fileError("Appending to the audit file", auditPath, error);
      }
    },

    async listAudit(registryId) {
      const text = (await readText(auditPath, "Reading the audit file")) ?? "";
      return parseAuditLines(text, auditPath)
        .filter((entry) => sameRegistry(entry.registryId, registryId))
        .sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
    },

    async acquireLock(registryId, { waitMs }) {
      const deadline = Date.now() + Math.max(0, waitMs);
      const mine: LockFile = {
        pid: process.pid,
        host: hostname(),
        registryId,
        owner,
        acquiredAt: new Date().toISOString(),
        token: randomBytes(8).toString("hex"),
      };
      try {
        await mkdir(dirname(lockPath), { recursive: true });
      } catch (error) {
        throw fileError("Creating the folder of the lock file", lockPath, error);
      }
      for (;;) {
        if (await tryCreateLock(lockPath, mine)) return lockHandle(lockPath, mine.token);
        const holder = await readLock(lockPath);
        if (holder !== undefined && holder !== "unreadable" && isStale(holder)) {
          // The holder died on this host without cleaning up; remove its lock and try again at once.
          await unlink(lockPath).catch(() => undefined);
          continue;
        }
        const remaining = deadline - Date.now();
        if (remaining <= 0) throw lockHeld(registryId, lockPath, waitMs, holder);
        await delay(Math.min(pollMs, remaining));
      }
    },
  };
}

/**
 * The other registries' entries are carried over as read, unvalidated; `JSON.stringify` overflows
 * the stack on one nested thousands deep (JSON.parse reads it fine), so name the entry instead.
 */
function serializeDocument(
  document: { schemaVersion: number; ledgers: Record<string, unknown> },
  path: string,
): string {
  try {
    return `${JSON.stringify(document, null, 2)}\n`;
  } catch (error) {
    const culprit = Object.keys(document.ledgers).find((key) => {
      try {
        JSON.stringify(document.ledgers[key]);
        return false;
      } catch {
        return true;
      }
    });
    const entry =
      culprit === undefined
        ? "an entry"
        : `the entry '${culprit.length > 300 ? `${culprit.slice(0, 300)}…` : culprit}'`;
    throw corruptFile(
      `The ledger file '${path}' cannot be written back: ${entry} is nested too deeply to serialise.`,
      path,
      error,
    );
  }
}

/** The freezes file: `{"schemaVersion": 1, "freezes": {"<registry id, lower case>": FreezeState}}`. */
async function readFreezes(freezePath: string): Promise<Record<string, unknown>> {
  const text = await readText(freezePath, "Reading the freezes file");
  if (text === undefined) return {};
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (error) {
    throw corruptFile(`The freezes file '${freezePath}' is not valid JSON.`, freezePath, error);
  }
  const freezes = (raw as { freezes?: unknown } | null)?.freezes;
  if (typeof freezes !== "object" || freezes === null || Array.isArray(freezes))
    throw corruptFile(`The freezes file '${freezePath}' has no 'freezes' object.`, freezePath);
  return freezes as Record<string, unknown>;
}

function fileKey(registryId: string): string {
  const key = registryId.trim().toLowerCase();
  if (key === "")
    throw new LedgerError("A registry id is empty; the ledger cannot name its entry.", { details: { registryId } });
  return key;
}

async function readText(path: string, operation: string): Promise<string | undefined> {
  try {
    return await readFile(path, "utf8");
  } catch (error) {
    if ((error as { code?: unknown }).code === "ENOENT") return undefined;
    throw fileError(operation, path, error);
  }
}

async function writeAtomically(path: string, text: string): Promise<void> {
  try {
    await writeFileAtomically(path, text);
  } catch (error) {
    throw fileError("Writing the ledger file", path, error);
  }
}

function parseAuditLines(text: string, auditPath: string): AuditEntry[] {
  const entries: AuditEntry[] = [];
  text.split("\n").forEach((line, index) => {
    if (line.trim() === "") return;
    entries.push(
      parseAuditEntry(line, {
        description: `at line ${index + 1} of file '${auditPath}'`,
        details: { path: auditPath, line: String(index + 1) },
      }),
    );
  });
  return entries;
}

async function tryCreateLock(lockPath: string, mine: LockFile): Promise<boolean> {
  let handle;
  try {
    handle = await open(lockPath, "wx", 0o644);
  } catch (error) {
    if ((error as { code?: unknown }).code === "EEXIST") return false;
    throw fileError("Creating the lock file", lockPath, error);
  }
  try {
    await handle.writeFile(`${JSON.stringify(mine)}\n`, "utf8");
  } finally {
    await handle.close();
  }
  return true;
}

/** The lock's holder; "unreadable" while it is being written or when damaged; undefined when gone. */
async function readLock(lockPath: string): Promise<LockFile | "unreadable" | undefined> {
  let text: string;
  try {
    text = await readFile(lockPath, "utf8");
  } catch (error) {
    if ((error as { code?: unknown }).code === "ENOENT") return undefined;
    return "unreadable";
  }
  try {
    const parsed = lockFileSchema.safeParse(JSON.parse(text));
    return parsed.success ? parsed.data : "unreadable";
  } catch {
    return "unreadable";
  }
}

/** Stale only when we can tell for sure: same host and the process is gone. */
function isStale(lock: LockFile): boolean {
  if (lock.host !== hostname()) return false;
  try {
    process.kill(lock.pid, 0);
    return false;
  } catch (error) {
    return (error as { code?: unknown }).code === "ESRCH";
  }
}

function lockHandle(lockPath: string, token: string): LockHandle {
  let released = false;
  return {
    async release() {
      if (released) return;
      released = true;
      const holder = await readLock(lockPath);
      // Never remove a lock that is no longer ours.
      if (holder === undefined || holder === "unreadable" || holder.token !== token) return;
      try {
        await unlink(lockPath);
      } catch (error) {
        if ((error as { code?: unknown }).code === "ENOENT") return;
        throw fileError("Removing the lock file", lockPath, error);
      }
    },
  };
}

function lockHeld(
  registryId: string,
  lockPath: string,
  waitMs: number,
  holder: LockFile | "unreadable" | undefined,
): LockHeldError {
  if (holder === undefined || holder === "unreadable") {
    return new LockHeldError(
      `The ledger is locked by '${lockPath}', whose content cannot be read, after waiting ${waitMs} ms (for ${registryId}).`,
      {
        details: { registryId, path: lockPath, waitedMs: waitMs },
        remedy: "If no other acr-allowlist-sync run is active, delete the lock file and retry.",
      },
    );
  }
  return new LockHeldError(
    `The ledger is locked by ${holder.owner} (pid ${holder.pid} on ${holder.host}, since ${holder.acquiredAt}, for ${holder.registryId}); still held after waiting ${waitMs} ms (for ${registryId}).`,
    {
      details: {
        registryId,
        path: lockPath,
        waitedMs: waitMs,
        holderPid: holder.pid,
        holderHost: holder.host,
        holderRegistryId: holder.registryId,
        since: holder.acquiredAt,
      },
      remedy:
        holder.host === hostname()
          ? "Wait for the other run to finish and retry."
          : `The lock was taken on host ${holder.host}; if no run is active there, delete '${lockPath}' and retry.`,
    },
  );
}

function fileError(operation: string, path: string, error: unknown): LedgerError {
  const code = (error as { code?: unknown } | null)?.code;
  return new LedgerError(
    `${operation} '${path}' failed (${typeof code === "string" ? code : error instanceof Error ? error.message : String(error)}).`,
    {
      details: { operation, path, errorCode: typeof code === "string" ? code : undefined },
      remedy: FILE_REMEDY,
      cause: error,
    },
  );
}

function corruptFile(message: string, path: string, cause?: unknown): LedgerCorruptError {
  return new LedgerCorruptError(message, {
    details: { path, document: "ledger" },
    remedy:
      "Inspect the ledger file and fix it, or delete it: without a ledger the next run adopts the registry rules that lie inside the current AzureContainerRegistry tags as owned and leaves all other rules alone.",
    ...(cause === undefined ? {} : { cause }),
  });
}

function corruptAudit(message: string, path: string, cause: unknown): LedgerCorruptError {
  return new LedgerCorruptError(message, {
    details: { path, document: "audit entry" },
    remedy:
      "Inspect the audit file and remove or complete its last line; the audit trail is history for rollbacks and is not needed to sync.",
    ...(cause === undefined ? {} : { cause }),
  });
}
