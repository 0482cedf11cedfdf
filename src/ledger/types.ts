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
  readonly before: { readonly ipRules: readonly string[]; readonly ownedRules: readonly string[] };
  readonly after: { readonly ipRules: readonly string[]; readonly ownedRules: readonly string[] };
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
