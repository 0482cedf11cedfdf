import type { ServiceTagsOrigin } from "../servicetags/schema.js";

/** What this service owns on one registry: the rules it applied last time. */
export interface LedgerState {
  readonly schemaVersion: 1;
  readonly registryId: string;
  /** Canonical `a.b.c.d/n` rules this service applied and therefore owns. */
  readonly ownedRules: readonly string[];
  /**
   * Rules a write in progress may have added: recorded before the PATCH and cleared after the
   * ledger is updated, so that a crash between the two never turns our rules into "people's".
   */
  readonly pendingRules: readonly string[];
  /**
   * The per-tag `changeNumber`s of the service tags last applied. A file whose selected tag has a
   * lower number is older than what was applied (a stale alias or a cached copy) and trips a guard.
   */
  readonly appliedTagChangeNumbers: Readonly<Record<string, number>>;
  readonly updatedAt: string;
  /** The audit entry that produced this state. */
  readonly lastAuditId: string | undefined;
  /**
   * Temporary grants: rules a person asked for with an expiry (`acr-allowlist-sync grant`). Their
   * rules are owned (in `ownedRules`) while they are on the registry; every run removes the expired
   * ones. Absent in ledgers written before grants existed, which reads as none.
   */
  readonly grants?: readonly Grant[];
  /**
   * The latest run clock any run recorded for this registry. A later run never uses an earlier
   * instant (see `src/grants/clock.ts`), so a run with a slow clock cannot make a grant younger.
   */
  readonly clockHighWater?: string | undefined;
}

/** One temporary rule: who asked for it, why, and until when. */
export interface Grant {
  /** `g` + 12 hex digits: joins AllowlistGrantAdded and AllowlistGrantExpired in telemetry. */
  readonly id: string;
  /** Canonical `a.b.c.d/n`. */
  readonly rule: string;
  /** Run clock (see `src/grants/clock.ts`) when the grant was made, ISO 8601. */
  readonly createdAt: string;
  /** The grant ends at this instant: the first successful run at or after it removes the rule. */
  readonly expiresAt: string;
  /** The actor who made it: `cli:<user>@<host>`. */
  readonly grantedBy: string;
  readonly reason: string;
  /** Set only while a `revoke` run plans the grant's end (never stored: the run drops the grant). */
  readonly revokedBy?: string;
}

export interface RulesSnapshot {
  readonly ipRules: readonly string[];
  readonly ownedRules: readonly string[];
  /** The owned rules that were temporary grants (absent in entries written before grants existed). */
  readonly grantRules?: readonly string[];
}

/** One applied change, append-only. */
export interface AuditEntry {
  readonly schemaVersion: 1;
  /** Sortable by time: `YYYYMMDDTHHMMSSmmmZ-<random>`. */
  readonly id: string;
  readonly registryId: string;
  readonly at: string;
  /** `sync`, `rollback` with `rollbackOf` naming the restored entry, or `release` (ownership given up). */
  readonly operation: "sync" | "rollback" | "release";
  readonly rollbackOf: string | undefined;
  /** Who or what ran it: `timer`, `cli:<user>@<host>`, ... */
  readonly actor: string;
  readonly before: RulesSnapshot;
  readonly after: RulesSnapshot;
  readonly source: ServiceTagsOrigin | undefined;
  /** The plan as JSON (see `src/sync/plan.ts`). */
  readonly plan: unknown;
}

/**
 * An operator's "leave this registry alone": the timer and `apply` skip a frozen registry, so a
 * rollback or a manual fix sticks. A document of its own beside the ledger (runs rewrite the ledger).
 */
export interface FreezeState {
  readonly schemaVersion: 1;
  readonly registryId: string;
  readonly reason: string;
  /** Who froze it: `cli:<user>@<host>`. */
  readonly by: string;
  readonly at: string;
}

export interface LockHandle {
  release(): Promise<void>;
  /**
   * Throws `LockLostError` when the lock may no longer be ours (a lease renewal failed). Called
   * before every write; stores whose lock cannot be lost (a lock file) need not implement it.
   */
  assertHeld?(): void;
}

/** The store for ledgers, audit entries and per-registry locks (a blob container in Azure, files for the CLI). */
export interface LedgerStore {
  /** Undefined when no ledger exists yet. Throws `LedgerCorruptError` or `LedgerError`. */
  read(registryId: string): Promise<LedgerState | undefined>;
  write(state: LedgerState): Promise<void>;
  appendAudit(entry: AuditEntry): Promise<void>;
  /** Oldest first. */
  listAudit(registryId: string): Promise<AuditEntry[]>;
  /** Undefined when the registry is not frozen. */
  readFreeze(registryId: string): Promise<FreezeState | undefined>;
  /** Freezes (a state) or unfreezes (undefined) the registry. */
  writeFreeze(registryId: string, freeze: FreezeState | undefined): Promise<void>;
  /** One writer per registry; waits up to `waitMs`, then throws `LockHeldError`. */
  acquireLock(registryId: string, options: { waitMs: number }): Promise<LockHandle>;
}
