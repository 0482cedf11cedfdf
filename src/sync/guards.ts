import { GuardError, type GuardName } from "../errors.js";
import type { SyncPolicy } from "../config/settings.js";
import type { GuardFinding, Plan } from "./plan.js";

export interface GuardOptions {
  readonly policy: SyncPolicy;
  /** Lets one run exceed the mass-removal share (an operator's decision, never a default). */
  readonly force: boolean;
}

/**
 * The safety checks a plan must pass before anything is written. Pure: the plan already holds
 * the registry facts. Guards only apply to plans that would write; an unchanged plan writes nothing.
 */
export function evaluateGuards(plan: Plan, options: GuardOptions): GuardFinding[] {
  if (!plan.changed) return [];
  const findings: { guard: GuardName; message: string }[] = [];
  const { registry } = plan;

  if (registry.sku !== "Premium") {
    findings.push({
      guard: "sku",
      message: `Registry ${registry.name} is ${registry.sku}: IP rules need the Premium SKU.`,
    });
  }
  if (registry.provisioningState !== "Succeeded") {
    findings.push({
      guard: "provisioning-state",
      message: `Registry ${registry.name} is '${registry.provisioningState}', not 'Succeeded': wait for the running operation to finish.`,
    });
  }
  if (registry.publicNetworkAccess === "Disabled") {
    findings.push({
      guard: "public-network-disabled",
      message: `Registry ${registry.name} has publicNetworkAccess Disabled: IP rules are pointless, nothing is written.`,
    });
  }
  if (registry.defaultAction === "Allow" && !options.policy.writeWhenDefaultAllow) {
    findings.push({
      guard: "default-action-allow",
      message: `Registry ${registry.name} has defaultAction Allow (firewall off): rules have no effect; set SYNC_WRITE_WHEN_DEFAULT_ALLOW=true to prepare them anyway.`,
    });
  }
  const allowedRevocations = Math.max(1, Math.floor(options.policy.maxRemovalShare * plan.ownedBefore.length));
  if (plan.revokedRules.length > allowedRevocations && !options.force) {
    findings.push({
      guard: "mass-removal",
      message: `The plan revokes ${plan.revokedRules.length} of ${plan.ownedBefore.length} owned rules (at most ${allowedRevocations} allowed by SYNC_MAX_REMOVAL_SHARE=${options.policy.maxRemovalShare}); check the source, then re-run with --force if it is right.`,
    });
  }
  if (plan.staleTags.length > 0 && !options.force) {
    const tags = plan.staleTags
      .map((t) => `${t.name} changeNumber ${t.changeNumber} < ${t.appliedChangeNumber}`)
      .join(", ");
    findings.push({
      guard: "stale-source",
      message: `The service-tags file is older than the one applied before (${tags}): a stale alias or cached copy would revoke current ranges. If Microsoft re-created the tag, check it and re-run with --force.`,
    });
  }
  if (plan.source.kind === "service-tags" && plan.aggregation.targetAddresses === 0) {
    findings.push({
      guard: "source-too-small",
      message: "The selected tags hold no IPv4 prefix: refusing to revoke access.",
    });
  }
  if (registry.defaultAction === "Deny" && plan.ipRulesAfter.length === 0) {
    findings.push({
      guard: "empty-deny-list",
      message: "The plan would leave no IP rule while defaultAction is Deny: refusing to close the registry.",
    });
  }
  const vnetRules = registry.legacyVirtualNetworkRules ?? 0;
  if (vnetRules > 0) {
    // The PATCH replaces the whole networkRuleSet, and the 2025-11-01 model has no
    // virtualNetworkRules: writing would send a rule set without them (azure-facts §7).
    findings.push({
      guard: "legacy-vnet-rules",
      message: `Registry ${registry.name} has ${vnetRules} legacy virtual-network rule(s) (listUsages VNetRules), which this API version cannot see and a write of the network rule set could drop. Remove them (az acr network-rule list / remove --vnet-name --subnet) and use a private endpoint instead, then run again.`,
    });
  }
  if (plan.counts.after > plan.counts.limit) {
    findings.push({
      guard: "budget",
      message: `The plan needs ${plan.counts.after} rules but the limit is ${plan.counts.limit}.`,
    });
  }
  return findings;
}

/** The first finding as a typed error (all findings in its details), for the write path. */
export function guardErrorFor(plan: Plan, findings: readonly GuardFinding[]): GuardError {
  const first = findings[0];
  if (first === undefined) throw new Error("guardErrorFor needs at least one finding");
  return new GuardError(first.guard as GuardName, `Nothing written to ${plan.registry.name}: ${first.message}`, {
    details: { registry: plan.registry.id, guards: findings.map((f) => f.guard) },
    remedy:
      (findings.length > 1
        ? `${findings.length - 1} more ${findings.length === 2 ? "guard" : "guards"} also tripped: ${findings
            .slice(1)
            .map((f) => f.guard)
            .join(", ")}. `
        : "") + "Fix what the guard names (acr-allowlist-sync plan shows the refused plan), then run again.",
    plan,
  });
}
