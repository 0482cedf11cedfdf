import { UsageError } from "../errors.js";
import type { Grant, LedgerState } from "../ledger/types.js";
import { parsePrefix, prefixContains } from "../prefixes/ipv4.js";
import type { Plan, RuleOwner } from "../sync/plan.js";

/**
 * Pure: how a `grant` or `revoke` changes the ledger a run plans from, decided under the lock from
 * the plan of the registry as it is (without the change) and the run clock.
 */

export type GrantChange =
  | {
      readonly kind: "add";
      /** Canonical rule (see `parseGrantRule`). */
      readonly rule: string;
      readonly ttlMs: number;
      readonly reason: string;
      readonly grantedBy: string;
      /** `g` + 12 hex digits, made by the caller so this stays deterministic. */
      readonly id: string;
    }
  | { readonly kind: "revoke"; readonly rule: string; readonly revokedBy: string };

export type GrantOutcome =
  | { readonly kind: "added"; readonly grant: Grant }
  | { readonly kind: "revoked"; readonly grant: Grant }
  /** Nothing written: a rule that stays on the registry already admits every address of the grant. */
  | {
      readonly kind: "already-admitted";
      readonly rule: string;
      readonly by: RuleOwner;
      readonly byRule: string;
      /** The grant that admits it, when `by` is `grant`. */
      readonly grant: Grant | undefined;
    };

export type GrantDecision =
  | { readonly kind: "plan"; readonly ledger: LedgerState; readonly outcome: GrantOutcome }
  | { readonly kind: "stop"; readonly outcome: GrantOutcome };

export function decideGrantChange(
  change: GrantChange,
  current: Plan,
  ledger: LedgerState | undefined,
  registryId: string,
  clock: Date,
): GrantDecision {
  const base: LedgerState = ledger ?? {
    schemaVersion: 1,
    registryId,
    ownedRules: [],
    pendingRules: [],
    appliedTagChangeNumbers: {},
    updatedAt: clock.toISOString(),
    lastAuditId: undefined,
  };
  const grants = ledger?.grants ?? [];
  if (change.kind === "add") {
    const admitting = admittingRule(change.rule, current);
    if (admitting !== undefined) {
      return {
        kind: "stop",
        outcome: {
          kind: "already-admitted",
          rule: change.rule,
          by: admitting.owner,
          byRule: admitting.rule,
          grant: admitting.owner === "grant" ? current.grants.active.find((g) => g.rule === admitting.rule) : undefined,
        },
      };
    }
    const grant: Grant = {
      id: change.id,
      rule: change.rule,
      createdAt: clock.toISOString(),
      expiresAt: new Date(clock.getTime() + change.ttlMs).toISOString(),
      grantedBy: change.grantedBy,
      reason: change.reason,
    };
    return { kind: "plan", ledger: { ...base, grants: [...grants, grant] }, outcome: { kind: "added", grant } };
  }
  const active = current.grants.active;
  const target = active.find((grant) => grant.rule === change.rule);
  if (target === undefined) {
    throw new UsageError(`No active grant of ${change.rule} on registry ${current.registry.name}.`, {
      details: { registry: registryId, rule: change.rule, activeGrants: active.map((grant) => grant.rule) },
      remedy:
        active.length === 0
          ? "The registry has no active grant; an expired one is removed by the next run."
          : `Active grants: ${active.map((grant) => grant.rule).join(", ")} ('acr-allowlist-sync grants' shows them).`,
    });
  }
  const ended: Grant = { ...target, expiresAt: clock.toISOString(), revokedBy: change.revokedBy };
  return {
    kind: "plan",
    ledger: { ...base, grants: grants.map((grant) => (grant.id === target.id ? ended : grant)) },
    outcome: { kind: "revoked", grant: ended },
  };
}

/** The rule that stays on the registry after `plan` and contains every address of `rule`, if any. */
function admittingRule(rule: string, plan: Plan): { rule: string; owner: RuleOwner } | undefined {
  const wanted = parsePrefix(rule, { mode: "strict" }).prefix;
  for (const candidate of [...plan.kept, ...plan.adds]) {
    let prefix;
    try {
      prefix = parsePrefix(candidate.rule, { mode: "lenient" }).prefix;
    } catch {
      continue;
    }
    if (prefixContains(prefix, wanted)) return { rule: candidate.rule, owner: candidate.owner };
  }
  return undefined;
}
