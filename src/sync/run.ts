import { randomBytes } from "node:crypto";
import {
  ConvergenceError,
  CoverInfeasibleError,
  ExtraAddressCapError,
  GrantRefusedError,
  UsageError,
} from "../errors.js";
import type { TargetConfig } from "../config/settings.js";
import { createAuditId } from "../ledger/audit-id.js";
import { decideGrantChange, type GrantChange, type GrantOutcome } from "../grants/change.js";
import { laterInstant, runClock } from "../grants/clock.js";
import type { AuditEntry, FreezeState, Grant, LedgerState, LedgerStore, LockHandle } from "../ledger/types.js";
import { formatPrefix, parsePrefix } from "../prefixes/ipv4.js";
import type { RegistryGateway, RegistryRef, RegistrySnapshot } from "../registry/types.js";
import type { ServiceTagsDocument } from "../servicetags/schema.js";
import { evaluateGuards, guardErrorFor } from "./guards.js";
import { planAllowlist, type DesiredSource, type Plan } from "./plan.js";
import { desiredFromServiceTags } from "./selection.js";

/**
 * The sequence for one registry: read, plan, guard, and (unless it is a dry run) lock, write,
 * verify and record. The only place that decides "dry run or apply". Decisions are made by the
 * pure planner and guards; this file only sequences the ports.
 */

export interface SyncPorts {
  readonly registry: RegistryGateway;
  readonly ledger: LedgerStore;
  readonly now?: () => Date;
}

export type SyncMode = "plan" | "apply";

export interface RunOptions {
  readonly mode: SyncMode;
  /** Lets this run exceed the mass-removal share. */
  readonly force?: boolean;
  /** Who or what runs it, recorded in the audit trail: `timer`, `http`, `cli:<user>@<host>`. */
  readonly actor: string;
  readonly lockWaitMs: number;
  /** A `grant` or `revoke`: decided under the lock, then planned and written like any run (same guards, one PATCH). */
  readonly grant?: GrantChange;
  /** Called with the plan right before its PATCH is sent (the CLI prints it there). */
  readonly beforeWrite?: ((plan: Plan) => void) | undefined;
  /** The invocation's deadline: aborts ARM calls, and no PATCH starts once it has fired. */
  readonly signal?: AbortSignal;
  /**
   * Apply mode: read the registry's freeze once the lock is held, so a freeze made while this run
   * waited for the lock still stops it. A frozen registry is planned, not written (outcome `skipped`).
   */
  readonly honourFreeze?: boolean;
}

/** `skipped`: the registry is frozen; the plan is what an apply would have done. */
export type RunOutcome = "dry-run" | "unchanged" | "applied" | "skipped";

export interface RunResult {
  readonly plan: Plan;
  readonly outcome: RunOutcome;
  /** The audit entry written for an applied change. */
  readonly auditId: string | undefined;
  /** 1, or 2 when someone else changed the rules during the run (before our PATCH or before our read-back) and we re-planned once. */
  readonly attempts: number;
  /** The freeze that made an apply skip the registry. */
  readonly freeze?: FreezeState | undefined;
  /** What became of the requested grant change (only with `RunOptions.grant`). */
  readonly grant?: GrantOutcome;
}

/** A fresh grant id (`g` + 12 hex digits). */
export function createGrantId(): string {
  return `g${randomBytes(6).toString("hex")}`;
}

/** One sync run of a target against an already fetched, validated service-tags file. */
export function syncTarget(
  target: TargetConfig,
  document: ServiceTagsDocument,
  ports: SyncPorts,
  options: RunOptions,
): Promise<RunResult> {
  return execute(target, ports, options, (snapshot) => desiredFromServiceTags(document, snapshot, target));
}

/** Restores the owned rules recorded by audit entry `auditId` (people's rules untouched, same guards). */
export async function rollbackTarget(
  target: TargetConfig,
  auditId: string,
  ports: SyncPorts,
  options: RunOptions,
): Promise<RunResult> {
  const entries = await ports.ledger.listAudit(target.ref.id);
  const entry = entries.find((candidate) => candidate.id === auditId);
  if (entry === undefined) {
    throw new UsageError(`No audit entry '${auditId}' for registry ${target.ref.name}.`, {
      details: { registry: target.ref.id, auditId, known: entries.slice(-5).map((e) => e.id) },
      remedy: "List the entries with 'acr-allowlist-sync history'.",
    });
  }
  // Grants of that time are not restored: they have their own expiry; active ones stay through the planner.
  const grantRules = new Set(entry.after.grantRules ?? []);
  return execute(target, ports, options, () => ({
    kind: "rollback",
    auditId,
    ownedRules: entry.after.ownedRules.filter((rule) => !grantRules.has(rule)),
  }));
}

/**
 * `release --remove`: one PATCH that removes the owned rules (pinned ones included; people's stay),
 * then a ledger that owns nothing. The operator asked for every owned rule to go, so the mass-removal
 * guard does not apply; the others (an empty list on a Deny registry above all) still do.
 */
export function releaseTarget(target: TargetConfig, ports: SyncPorts, options: RunOptions): Promise<RunResult> {
  return execute({ ...target, pinnedRules: [] }, ports, { ...options, force: true }, () => ({ kind: "release" }));
}

/**
 * `release` without `--remove`: forget ownership under the lock (the rules stay, as people's from now
 * on) and record it in the audit trail. Returns the audit entry's id.
 */
export async function forgetOwnership(target: TargetConfig, ports: SyncPorts, options: RunOptions): Promise<string> {
  const now = ports.now ?? (() => new Date());
  const lock = await ports.ledger.acquireLock(target.ref.id, { waitMs: options.lockWaitMs });
  try {
    const [ledger, snapshot] = await Promise.all([
      ports.ledger.read(target.ref.id),
      ports.registry.read(target.ref, { includeReplicas: target.includeReplicas }),
    ]);
    const owned = [...(ledger?.ownedRules ?? []), ...(ledger?.pendingRules ?? [])];
    const id = createAuditId(now());
    await ports.ledger.appendAudit({
      schemaVersion: 1,
      id,
      registryId: target.ref.id,
      at: now().toISOString(),
      operation: "release",
      rollbackOf: undefined,
      actor: options.actor,
      before: { ipRules: [...snapshot.ipRules], ownedRules: owned },
      after: { ipRules: [...snapshot.ipRules], ownedRules: [] },
      source: undefined,
      plan: null,
    });
    await writeLedger(
      ports.ledger,
      target.ref,
      {
        ownedRules: [],
        pendingRules: [],
        appliedTagChangeNumbers: ledger?.appliedTagChangeNumbers ?? {},
        lastAuditId: id,
      },
      now,
    );
    return id;
  } finally {
    await lock.release();
  }
}

async function execute(
  target: TargetConfig,
  ports: SyncPorts,
  options: RunOptions,
  desiredFor: (snapshot: RegistrySnapshot) => DesiredSource,
): Promise<RunResult> {
  const { ref, policy, pinnedRules } = target;
  const readOptions = { includeReplicas: target.includeReplicas, signal: options.signal };
  const now = ports.now ?? (() => new Date());
  interface Planned {
    readonly plan: Plan;
    /** The ledger the plan was made from: the stored one, with the grant change applied. */
    readonly planned: LedgerState | undefined;
    readonly clock: Date;
    readonly grant: GrantOutcome | undefined;
    /** The grant change needs no write: report it and stop. */
    readonly stop: boolean;
  }
  const planWith = (snapshot: RegistrySnapshot, ledger: LedgerState | undefined, clock: Date): Plan => {
    const plan = planAllowlist({ snapshot, ledger, desired: desiredFor(snapshot), pinnedRules, policy, now: clock });
    return { ...plan, guards: evaluateGuards(plan, { policy, force: options.force === true }) };
  };
  const planFrom = (snapshot: RegistrySnapshot, ledger: LedgerState | undefined): Planned => {
    const clock = runClock(snapshot.armTime, ledger?.clockHighWater, now());
    const current = planWith(snapshot, ledger, clock);
    if (options.grant === undefined) return { plan: current, planned: ledger, clock, grant: undefined, stop: false };
    const decision = decideGrantChange(options.grant, current, ledger, ref.id, clock);
    if (decision.kind === "stop") return { plan: current, planned: ledger, clock, grant: decision.outcome, stop: true };
    try {
      const plan = planWith(snapshot, decision.ledger, clock);
      return { plan, planned: decision.ledger, clock, grant: decision.outcome, stop: false };
    } catch (error) {
      throw noRoomForGrant(error, current, options.grant);
    }
  };

  if (options.mode === "plan") {
    const [snapshot, ledger] = await Promise.all([ports.registry.read(ref, readOptions), ports.ledger.read(ref.id)]);
    const { plan, grant } = planFrom(snapshot, ledger);
    return { plan, outcome: "dry-run", auditId: undefined, attempts: 1, grant };
  }

  const lock: LockHandle = await ports.ledger.acquireLock(ref.id, { waitMs: options.lockWaitMs });
  // Every write (ledger, PATCH, audit) first checks that the lease is still ours.
  const held = (): void => lock.assertHeld?.();
  try {
    const freeze = options.honourFreeze === true ? await ports.ledger.readFreeze(ref.id) : undefined;
    if (freeze !== undefined) {
      // The operator's "leave it alone": the plan still shows what an apply would have changed.
      const [snapshot, ledger] = await Promise.all([ports.registry.read(ref, readOptions), ports.ledger.read(ref.id)]);
      const { plan, grant } = planFrom(snapshot, ledger);
      return { plan, outcome: "skipped", auditId: undefined, attempts: 1, grant, freeze };
    }
    // The ledger first: a corrupt one stops the run before any ARM call.
    let ledger = await ports.ledger.read(ref.id);
    let snapshot = await ports.registry.read(ref, readOptions);
    const firstSnapshot = snapshot;
    // The re-reads around the write only need the rules: the limit, the legacy VNet rules and the
    // replicas of the full read a moment ago stand (one GET instead of GET + listUsages [+ replicas]).
    const rulesReadOptions = (): typeof readOptions & { limitsFrom: RegistrySnapshot } => ({
      ...readOptions,
      limitsFrom: snapshot,
    });
    let wrote = false;
    const auditEntryFor = (plan: Plan, before: RegistrySnapshot, after: RegistrySnapshot): AuditEntry => ({
      schemaVersion: 1,
      id: createAuditId(now()),
      registryId: ref.id,
      at: now().toISOString(),
      operation: plan.source.kind === "service-tags" ? "sync" : plan.source.kind,
      rollbackOf: plan.source.kind === "rollback" ? plan.source.auditId : undefined,
      actor: options.actor,
      before: { ipRules: [...before.ipRules], ownedRules: [...plan.ownedBefore], grantRules: grantRulesOf(ledger) },
      after: {
        ipRules: [...after.ipRules],
        ownedRules: [...plan.ownedAfter],
        grantRules: plan.grants.active.map((grant) => grant.rule),
      },
      source: plan.source.kind === "service-tags" ? plan.source.origin : undefined,
      plan,
    });
    for (let attempt = 1; ; attempt += 1) {
      const { plan, clock, grant, stop } = planFrom(snapshot, ledger);
      if (stop) return { plan, outcome: "unchanged", auditId: undefined, attempts: attempt, grant };
      if (plan.guards.length > 0) throw guardErrorFor(plan, plan.guards);
      if (!plan.changed) {
        const tagNumbers = tagNumbersAfter(ledger, plan, options.force === true);
        if (attempt === 1 && !ledgerMatches(ledger, plan, tagNumbers)) {
          held();
          ledger = await writeLedger(
            ports.ledger,
            ref,
            {
              ownedRules: plan.ownedAfter,
              pendingRules: [],
              appliedTagChangeNumbers: tagNumbers,
              lastAuditId: ledger?.lastAuditId,
              grants: plan.grants.active,
              clockHighWater: highWaterAfter(ledger, plan, clock),
            },
            now,
          );
        }
        if (attempt === 1) return { plan, outcome: "unchanged", auditId: undefined, attempts: attempt, grant };
      } else {
        // Claim the additions before writing, so a crash before the ledger update cannot turn them into people's rules.
        held();
        // ARM has no ETag and a PATCH replaces the whole list: a rule someone added since our read would be
        // dropped without a trace (the read-back matches our plan), and a defaultAction they changed would be
        // reverted. Read again right before writing and re-plan if anything moved; one round trip of risk remains.
        // The claim and the re-read do not depend on each other: both are done before the PATCH starts.
        let current: RegistrySnapshot;
        [ledger, current] = await Promise.all([
          writeLedger(
            ports.ledger,
            ref,
            {
              ownedRules: ledger?.ownedRules ?? plan.ownedBefore,
              pendingRules: plan.adds.map((add) => add.rule),
              appliedTagChangeNumbers: ledger?.appliedTagChangeNumbers ?? {},
              lastAuditId: ledger?.lastAuditId,
              // The stored grants, unchanged: a new grant is recorded only once its rule is on the registry.
              grants: ledger?.grants ?? [],
              clockHighWater: highWaterAfter(ledger, plan, clock),
            },
            now,
          ),
          ports.registry.read(ref, rulesReadOptions()),
        ]);
        if (!sameRules(current.ipRules, snapshot.ipRules) || current.defaultAction !== snapshot.defaultAction) {
          if (attempt >= 2) throw notConverged(ref, plan, current);
          snapshot = current;
          continue;
        }
        options.signal?.throwIfAborted();
        held();
        options.beforeWrite?.(plan);
        await ports.registry.replaceIpRules(
          ref,
          { ipRules: plan.ipRulesAfter, defaultAction: snapshot.defaultAction },
          { signal: options.signal },
        );
        wrote = true;
      }
      const after = await ports.registry.read(ref, rulesReadOptions());
      if (sameRules(after.ipRules, plan.ipRulesAfter)) {
        const entry = auditEntryFor(plan, firstSnapshot, after);
        // The audit entry is append-only (never overwrites anything): record what was done even then.
        await ports.ledger.appendAudit(entry);
        held();
        await writeLedger(
          ports.ledger,
          ref,
          {
            ownedRules: plan.ownedAfter,
            pendingRules: [],
            appliedTagChangeNumbers: tagNumbersAfter(ledger, plan, options.force === true),
            lastAuditId: entry.id,
            grants: plan.grants.active,
            clockHighWater: highWaterAfter(ledger, plan, clock),
          },
          now,
        );
        return { plan, outcome: "applied", auditId: entry.id, attempts: attempt, grant };
      }
      if (attempt >= 2) {
        // Our PATCH was applied and then overwritten: record it all the same (the ledger keeps the additions
        // as pending, so they stay ours), then stop and report instead of fighting the other writer.
        if (wrote) await ports.ledger.appendAudit(auditEntryFor(plan, firstSnapshot, after));
        throw notConverged(ref, plan, after);
      }
      // Someone else wrote between our write and our read-back: re-plan once from what is there now.
      snapshot = after;
    }
  } finally {
    await lock.release();
  }
}

function notConverged(ref: RegistryRef, plan: Plan, actual: RegistrySnapshot): ConvergenceError {
  return new ConvergenceError(
    `Registry ${ref.name} does not hold the planned rules after a re-plan: someone else keeps changing its network rules.`,
    {
      details: { registry: ref.id, expected: plan.ipRulesAfter.length, actual: actual.ipRules.length },
      remedy:
        "Find the other writer (az monitor activity-log list --resource-id <registry>) and run again once it is done.",
    },
  );
}

async function writeLedger(
  store: LedgerStore,
  ref: RegistryRef,
  content: Pick<
    LedgerState,
    "ownedRules" | "pendingRules" | "appliedTagChangeNumbers" | "lastAuditId" | "grants" | "clockHighWater"
  >,
  now: () => Date,
): Promise<LedgerState> {
  const state: LedgerState = { schemaVersion: 1, registryId: ref.id, ...content, updatedAt: now().toISOString() };
  await store.write(state);
  return state;
}

/**
 * The tag changeNumbers to remember: never lowered by an ordinary run (so an older file keeps
 * tripping the stale-source guard), but taken as they are when an operator forces the run (a
 * tag that Microsoft re-created starts again at 1).
 */
function tagNumbersAfter(ledger: LedgerState | undefined, plan: Plan, force: boolean): Record<string, number> {
  const next: Record<string, number> = { ...ledger?.appliedTagChangeNumbers };
  if (plan.source.kind !== "service-tags") return next;
  for (const tag of plan.source.tags)
    next[tag.name] = force ? tag.changeNumber : Math.max(next[tag.name] ?? 0, tag.changeNumber);
  return next;
}

function ledgerMatches(
  ledger: LedgerState | undefined,
  plan: Plan,
  tagNumbers: Readonly<Record<string, number>>,
): boolean {
  if (ledger === undefined) return false;
  if (ledger.pendingRules.length > 0) return false;
  // Expired grants still listed (their rule was already gone) are dropped by writing the ledger.
  if (
    !sameSet(
      (ledger.grants ?? []).map((grant) => grant.id),
      plan.grants.active.map((grant) => grant.id),
    )
  )
    return false;
  const recorded = Object.entries(ledger.appliedTagChangeNumbers);
  if (
    recorded.length !== Object.keys(tagNumbers).length ||
    recorded.some(([name, number]) => tagNumbers[name] !== number)
  )
    return false;
  return sameSet(ledger.ownedRules, plan.ownedAfter);
}

/** Recorded only where grants are involved: it decides nothing else. */
function highWaterAfter(ledger: LedgerState | undefined, plan: Plan, clock: Date): string | undefined {
  if ((ledger?.grants ?? []).length === 0 && plan.grants.active.length === 0 && plan.grants.expired.length === 0)
    return ledger?.clockHighWater;
  return laterInstant(ledger?.clockHighWater, clock.toISOString());
}

function grantRulesOf(ledger: LedgerState | undefined): string[] {
  return (ledger?.grants ?? []).map((grant: Grant) => grant.rule);
}

/**
 * A grant that does not fit: the figures of the cover that no longer fits once the grant takes its
 * rule, and what would free room. Other failures pass through as they are.
 */
function noRoomForGrant(error: unknown, current: Plan, change: GrantChange): unknown {
  if (change.kind !== "add" || !(error instanceof CoverInfeasibleError || error instanceof ExtraAddressCapError))
    return error;
  const c = current.counts;
  const rulesLeft = c.budget - 1;
  const needed = typeof error.details.minimumBudget === "number" ? error.details.minimumBudget : undefined;
  const cover =
    error instanceof CoverInfeasibleError
      ? needed === undefined || needed <= 1
        ? "no rule would be left for the service-tag cover"
        : `the service-tag cover needs at least ${needed} rules (nothing shorter than /${current.aggregation.minPrefixLength}) and only ${Math.max(0, rulesLeft)} would be left`
      : `the cover squeezed into ${Math.max(0, rulesLeft)} rules would admit more extra addresses than SYNC_MAX_EXTRA_ADDRESSES/SYNC_MAX_EXTRA_RATIO allow`;
  return new GrantRefusedError(
    `No room for a grant of ${change.rule} on ${current.registry.name}: the registry allows ${c.limit} IP rules; people's rules ${c.peopleRules}, pinned ${c.pinnedRules}, active grants ${c.grantRules} and headroom ${c.headroom} leave ${c.budget} for the service-tag cover, and with this grant ${cover}.`,
    {
      details: {
        registry: current.registry.id,
        rule: change.rule,
        limit: c.limit,
        peopleRules: c.peopleRules,
        pinnedRules: c.pinnedRules,
        grantRules: c.grantRules,
        headroom: c.headroom,
        budget: c.budget,
        minimumBudget: needed,
      },
      remedy:
        "To free room: revoke a grant ('acr-allowlist-sync grants' lists them, 'revoke' ends one), remove a hand-made rule, lower SYNC_HEADROOM, lower SYNC_MIN_PREFIX_LENGTH, or select fewer regions.",
      cause: error,
    },
  );
}

/** ACR may store `1.2.3.4` for `1.2.3.4/32` and in any order: compare canonical sets. */
export function sameRules(actual: readonly string[], expected: readonly string[]): boolean {
  return sameSet(actual.map(canonicalOrRaw), expected.map(canonicalOrRaw));
}

function canonicalOrRaw(rule: string): string {
  try {
    return formatPrefix(parsePrefix(rule, { mode: "lenient" }).prefix);
  } catch {
    return rule;
  }
}

function sameSet(a: readonly string[], b: readonly string[]): boolean {
  const left = new Set(a);
  const right = new Set(b);
  return left.size === right.size && [...left].every((value) => right.has(value));
}
