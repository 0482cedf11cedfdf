import { z } from "zod";
import { LedgerCorruptError, LedgerError } from "../errors.js";
import { CLOUDS } from "../servicetags/schema.js";
import { AUDIT_ID_PATTERN } from "./audit-id.js";
import type { AuditEntry, FreezeState, LedgerState } from "./types.js";

export const LEDGER_SCHEMA_VERSION = 1;

const ipv4 = String.raw`(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(?:\.(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}`;
/** Canonical `a.b.c.d/n`, as the service writes owned rules. */
const ownedRuleSchema = z.string().regex(new RegExp(`^${ipv4}/(?:3[0-2]|[12]?\\d)$`), "not an IPv4 prefix a.b.c.d/n");
/** A registry rule as ARM returned it (`1.2.3.4` or `1.2.3.4/32`). */
const ipRuleSchema = z
  .string()
  .regex(new RegExp(`^${ipv4}(?:/(?:3[0-2]|[12]?\\d))?$`), "not an IPv4 address or prefix");
const timestampSchema = z.iso.datetime({ offset: true });
const auditIdSchema = z.string().regex(AUDIT_ID_PATTERN, "not an audit id YYYYMMDDTHHMMSSmmmZ-xxxxxx");

export const ledgerStateSchema = z.object({
  schemaVersion: z.literal(LEDGER_SCHEMA_VERSION),
  registryId: z.string().min(1),
  ownedRules: z.array(ownedRuleSchema),
  pendingRules: z.array(ownedRuleSchema).default([]),
  appliedTagChangeNumbers: z.record(z.string().min(1).max(200), z.number().int().nonnegative()).default({}),
  updatedAt: timestampSchema,
  lastAuditId: auditIdSchema.nullish(),
});

export const freezeStateSchema = z.object({
  schemaVersion: z.literal(LEDGER_SCHEMA_VERSION),
  registryId: z.string().min(1),
  reason: z.string().min(1).max(1000),
  by: z.string().min(1).max(300),
  at: timestampSchema,
});

export const serviceTagsOriginSchema = z.object({
  kind: z.enum(["explicit", "file", "details-page", "latest-alias", "discovery-api", "last-good"]),
  location: z.string(),
  fileName: z.string(),
  changeNumber: z.number().int().nonnegative(),
  cloud: z.enum(CLOUDS),
  retrievedAt: z.string(),
  bytes: z.number().int().nonnegative(),
  publishedAt: z.string().optional(),
  ageBasis: z.enum(["file-date", "last-modified", "first-seen", "retrieved"]).optional(),
  dataAgeDays: z.number().nonnegative().optional(),
  copyOf: z.string().optional(),
});

const rulesSnapshotSchema = z.object({ ipRules: z.array(ipRuleSchema), ownedRules: z.array(ownedRuleSchema) });

export const auditEntrySchema = z.object({
  schemaVersion: z.literal(LEDGER_SCHEMA_VERSION),
  id: auditIdSchema,
  registryId: z.string().min(1),
  at: timestampSchema,
  operation: z.enum(["sync", "rollback", "release"]),
  rollbackOf: auditIdSchema.nullish(),
  actor: z.string().min(1),
  before: rulesSnapshotSchema,
  after: rulesSnapshotSchema,
  source: serviceTagsOriginSchema.nullish(),
  plan: z.unknown(),
});

const MAX_SHOWN_CHARS = 64;

/**
 * A short rendering of a value read from storage, for messages. Never throws and never echoes much:
 * `String()` throws on `{"toString":1,"valueOf":1}` and `JSON.stringify` overflows the stack on
 * deeply nested arrays, both of which a hand-edited or damaged document can hold.
 */
export function showStoredValue(value: unknown): string {
  if (typeof value === "string")
    return JSON.stringify(value.length > MAX_SHOWN_CHARS ? `${value.slice(0, MAX_SHOWN_CHARS)}…` : value);
  if (value === null || value === undefined || typeof value === "number" || typeof value === "boolean")
    return String(value);
  return Array.isArray(value) ? "(an array)" : "(an object)";
}

/** Where a document was read from, for messages: `blob 'c/path'` or `file '/path'`. */
export interface DocumentLocation {
  readonly description: string;
  readonly details: Readonly<Record<string, string>>;
}

const LEDGER_REMEDY =
  "Inspect the ledger and fix it, or delete it: without a ledger the next run adopts the registry rules that lie inside the current AzureContainerRegistry tags as owned and leaves all other rules alone.";
const AUDIT_REMEDY =
  "Inspect the audit entry and fix or move it away; the audit trail is history for rollbacks and is not needed to sync.";

/** Parses a stored ledger document. Throws `LedgerCorruptError` naming where it lives and what to do. */
export function parseLedgerState(text: string, where: DocumentLocation): LedgerState {
  return ledgerStateFrom(parseJson(text, where, "ledger"), where);
}

/** Validates a value already parsed from JSON (the file store keeps all ledgers in one document). */
export function ledgerStateFrom(raw: unknown, where: DocumentLocation): LedgerState {
  const data = checkDocument(ledgerStateSchema, raw, where, "ledger");
  return {
    schemaVersion: data.schemaVersion,
    registryId: data.registryId,
    ownedRules: data.ownedRules,
    pendingRules: data.pendingRules,
    appliedTagChangeNumbers: data.appliedTagChangeNumbers,
    updatedAt: data.updatedAt,
    lastAuditId: data.lastAuditId ?? undefined,
  };
}

/** Parses a stored freeze document (or a value already parsed from JSON). */
export function parseFreezeState(raw: unknown, where: DocumentLocation): FreezeState {
  const value = typeof raw === "string" ? parseJson(raw, where, "freeze") : raw;
  return checkDocument(freezeStateSchema, value, where, "freeze");
}

export function parseAuditEntry(text: string, where: DocumentLocation): AuditEntry {
  const data = checkDocument(auditEntrySchema, parseJson(text, where, "audit entry"), where, "audit entry");
  return {
    schemaVersion: data.schemaVersion,
    id: data.id,
    registryId: data.registryId,
    at: data.at,
    operation: data.operation,
    rollbackOf: data.rollbackOf ?? undefined,
    actor: data.actor,
    before: data.before,
    after: data.after,
    source: data.source ?? undefined,
    plan: data.plan,
  };
}

/** The stored form: absent optional fields are written as `null` so every document shows every field. */
export function ledgerStateToJson(state: LedgerState): Record<string, unknown> {
  return { ...state, lastAuditId: state.lastAuditId ?? null };
}

export function auditEntryToJson(entry: AuditEntry): Record<string, unknown> {
  return { ...entry, rollbackOf: entry.rollbackOf ?? null, source: entry.source ?? null };
}

function parseJson(text: string, where: DocumentLocation, what: string): unknown {
  try {
    return JSON.parse(text.charCodeAt(0) === 0xfeff ? text.slice(1) : text);
  } catch (error) {
    throw corrupt(
      `The ${what} ${where.description} is not valid JSON (${error instanceof Error ? error.message : String(error)}).`,
      where,
      what,
      error,
    );
  }
}

function checkDocument<T>(schema: z.ZodType<T>, raw: unknown, where: DocumentLocation, what: string): T {
  if (typeof raw === "object" && raw !== null && "schemaVersion" in raw) {
    const version = raw.schemaVersion;
    if (version !== LEDGER_SCHEMA_VERSION) {
      const shown = showStoredValue(version);
      throw corrupt(
        `The ${what} ${where.description} has schemaVersion ${shown}; this version of acr-allowlist-sync reads only ${LEDGER_SCHEMA_VERSION}.`,
        where,
        what,
        undefined,
        { schemaVersion: shown },
        "A newer acr-allowlist-sync may have written it: upgrade this one, or inspect it and fix or delete it.",
      );
    }
  }
  const parsed = schema.safeParse(raw);
  if (!parsed.success) {
    // A path can hold a stored key of any length: shorten each part so the message stays one readable line.
    const pathText = (path: readonly PropertyKey[]) =>
      path.map((part) => showPathPart(String(part))).join(".") || "(root)";
    const issues = parsed.error.issues.slice(0, 3).map((issue) => `${pathText(issue.path)}: ${issue.message}`);
    throw corrupt(
      `The ${what} ${where.description} does not have the expected shape: ${issues.join("; ")}.`,
      where,
      what,
      undefined,
      { issues: issues.join("; ") },
    );
  }
  return parsed.data;
}

function showPathPart(part: string): string {
  return part.length <= 60 ? part : `${part.slice(0, 57)}...`;
}

function corrupt(
  message: string,
  where: DocumentLocation,
  what: string,
  cause: unknown,
  extra: Record<string, string> = {},
  remedyPrefix?: string,
): LedgerCorruptError {
  const remedy = what === "ledger" ? LEDGER_REMEDY : AUDIT_REMEDY;
  return new LedgerCorruptError(message, {
    details: { ...where.details, document: what, ...extra },
    remedy: remedyPrefix === undefined ? remedy : `${remedyPrefix} ${remedy}`,
    ...(cause === undefined ? {} : { cause }),
  });
}

/** Refuses to store what could not be read back (a bug upstream, caught before it corrupts the store). */
export function checkWritable(
  kind: "ledger" | "audit entry",
  value: Record<string, unknown>,
  registryId: string,
): void {
  const parsed = (kind === "ledger" ? ledgerStateSchema : auditEntrySchema).safeParse(value);
  if (!parsed.success) {
    // A path can hold a stored key of any length: shorten each part so the message stays one readable line.
    const pathText = (path: readonly PropertyKey[]) =>
      path.map((part) => showPathPart(String(part))).join(".") || "(root)";
    const issues = parsed.error.issues.slice(0, 3).map((issue) => `${pathText(issue.path)}: ${issue.message}`);
    throw new LedgerError(`Refusing to store an invalid ${kind} for ${registryId}: ${issues.join("; ")}.`, {
      details: { registryId, document: kind, issues: issues.join("; ") },
      remedy: "This is a bug in acr-allowlist-sync; please report it with this message.",
    });
  }
}
