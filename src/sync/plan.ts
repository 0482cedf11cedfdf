import { CoverInfeasibleError } from "../errors.js";
import type { SyncPolicy } from "../config/settings.js";
import type { LedgerState } from "../ledger/types.js";
import { optimalCover } from "../prefixes/cover.js";
import { formatPrefix, parsePrefix, prefixEnd, prefixSize, type Prefix } from "../prefixes/ipv4.js";
import { mergePrefixes } from "../prefixes/merge.js";
import type { DefaultAction, RegistrySnapshot } from "../registry/types.js";
import type { ServiceTagsOrigin } from "../servicetags/schema.js";
import type { SelectedTag } from "../servicetags/select.js";
import { count } from "./render.js";

/**
 * The planner: a pure function from (registry snapshot, ledger, desired prefixes, policy) to a
 * serialisable Plan. It decides ownership, the optimal cover within the budget, and the exact
 * list to send. It never touches a rule that belongs to people.
 */

/** What the owned rules should cover: the selected service tags, or an audit entry to roll back to. */
export type DesiredSource =
  | {
      readonly kind: "service-tags";
      readonly origin: ServiceTagsOrigin;
      readonly regions: readonly string[];
      readonly tags: readonly SelectedTag[];
      /** IPv4 prefixes of every `AzureContainerRegistry*` tag in the file: adoption when no ledger exists. */
      readonly adoptablePrefixes: readonly string[];
      /** What the source chain says about this data (`source-lag` of selected tags, `stale-copy`). */
      readonly sourceWarnings?: readonly PlanWarning[];
    }
  | { readonly kind: "rollback"; readonly auditId: string; readonly ownedRules: readonly string[] }
  /** `release --remove`: own nothing any more (the owned rules go, people's stay). */
  | { readonly kind: "release" };

export interface PlanInput {
  readonly snapshot: RegistrySnapshot;
  readonly ledger: LedgerState | undefined;
  readonly desired: DesiredSource;
  readonly pinnedRules: readonly string[];
  readonly policy: SyncPolicy;
}

export type RuleOwner = "service" | "people" | "pinned";

export interface PlannedRule {
  /** Canonical `a.b.c.d/n`, or the raw value for an unparseable people's rule. */
  readonly rule: string;
  readonly owner: RuleOwner;
  readonly reason: string;
}

export interface PlanWarning {
  readonly code:
    | "bypass-for-tasks-disabled"
    | "default-action-allow"
    | "ipv6-skipped"
    | "host-bits-canonicalised"
    | "unparseable-rule"
    | "adopted-without-ledger"
    | "drift"
    | "limit-defaulted"
    | "api-version-fallback"
    | "public-network-disabled"
    | "source-lag"
    | "stale-copy";
  readonly message: string;
  /** Structured facts of the warning, e.g. both changeNumbers of a `source-lag`. */
  readonly details?: Readonly<Record<string, string | number>>;
}

export interface GuardFinding {
  readonly guard: string;
  readonly message: string;
}

export interface Plan {
  readonly schemaVersion: 1;
  readonly registry: {
    readonly id: string;
    readonly name: string;
    readonly location: string;
    readonly sku: string;
    readonly provisioningState: string;
    readonly publicNetworkAccess: string | undefined;
    readonly defaultAction: DefaultAction;
    readonly networkRuleBypassOptions: string | undefined;
    readonly networkRuleBypassAllowedForTasks: boolean | undefined;
    /** Legacy virtual-network rules in use (`VNetRules`); a write could drop them, so the guard refuses it. */
    readonly legacyVirtualNetworkRules?: number;
  };
  readonly source:
    | {
        readonly kind: "service-tags";
        readonly origin: ServiceTagsOrigin;
        readonly regions: readonly string[];
        readonly tags: readonly {
          readonly name: string;
          readonly changeNumber: number;
          readonly ipv4Prefixes: number;
          readonly ipv6Skipped: number;
        }[];
      }
    | { readonly kind: "rollback"; readonly auditId: string }
    | { readonly kind: "release" };
  /** `ledger`: ownership from the ledger; `adopted`: no ledger, rules inside current ACR tags adopted. */
  readonly ownership: "ledger" | "adopted";
  readonly adds: readonly PlannedRule[];
  readonly removes: readonly PlannedRule[];
  readonly kept: readonly PlannedRule[];
  /** The exact list to send (people's raw values untouched), in a stable order. */
  readonly ipRulesAfter: readonly string[];
  /** Canonical rules the service owns after this plan (written to the ledger). */
  readonly ownedAfter: readonly string[];
  /** Canonical rules the service owned before this plan. */
  readonly ownedBefore: readonly string[];
  readonly counts: {
    readonly before: number;
    readonly after: number;
    readonly limit: number;
    readonly limitSource: "listUsages" | "default";
    readonly peopleRules: number;
    readonly pinnedRules: number;
    readonly serviceRules: number;
    readonly headroom: number;
    readonly budget: number;
  };
  readonly aggregation: {
    readonly publishedPrefixes: number;
    readonly mergedPrefixes: number;
    readonly targetAddresses: number;
    readonly coveredAddresses: number;
    readonly extraAddresses: number;
    readonly minPrefixLength: number;
  };
  /** Owned rules from the ledger that are no longer on the registry (someone removed them). */
  readonly drift: readonly string[];
  /** Selected tags whose changeNumber is lower than the one applied last time: the file is older. */
  readonly staleTags: readonly {
    readonly name: string;
    readonly changeNumber: number;
    readonly appliedChangeNumber: number;
  }[];
  /** Owned rules this plan revokes: removed and not covered by any rule that remains. */
  readonly revokedRules: readonly string[];
  readonly changed: boolean;
  readonly warnings: readonly PlanWarning[];
  /** Filled by `evaluateGuards`; empty in the pure plan. */
  readonly guards: readonly GuardFinding[];
}

interface RegistryRule {
  readonly raw: string;
  readonly canonical: string | undefined;
  readonly prefix: Prefix | undefined;
}

export function planAllowlist(input: PlanInput): Plan {
  const { snapshot, ledger, desired, policy } = input;
  const warnings: PlanWarning[] = [];

  const registryRules = snapshot.ipRules.map((raw) => readRegistryRule(raw, warnings));
  const onRegistry = new Set(registryRules.flatMap((r) => (r.canonical === undefined ? [] : [r.canonical])));

  // Ownership: the ledger says what we applied; without one, adopt rules inside current ACR tags.
  let ownedBefore: Set<string>;
  let drift: string[] = [];
  if (ledger !== undefined) {
    const claimed = new Set([...ledger.ownedRules, ...ledger.pendingRules]);
    ownedBefore = new Set([...onRegistry].filter((rule) => claimed.has(rule)));
    drift = ledger.ownedRules.filter((rule) => !onRegistry.has(rule));
    if (drift.length > 0) {
      warnings.push({
        code: "drift",
        message: `${count(drift.length, "rule")} this service applied ${drift.length === 1 ? "was" : "were"} removed by someone else: ${drift.join(", ")}.`,
      });
    }
  } else {
    const adoptable =
      desired.kind === "service-tags"
        ? mergePrefixes(desired.adoptablePrefixes.map((p) => parsePrefix(p, { mode: "lenient" }).prefix))
        : [];
    ownedBefore = new Set(
      registryRules.flatMap((r) =>
        r.prefix !== undefined && r.canonical !== undefined && isInside(r.prefix, adoptable) ? [r.canonical] : [],
      ),
    );
    warnings.push({
      code: "adopted-without-ledger",
      message: `No ledger for this registry: ${count(ownedBefore.size, "rule")} inside the current AzureContainerRegistry tags ${ownedBefore.size === 1 ? "is" : "are"} adopted as owned; every other rule is treated as a person's.`,
    });
  }

  const peopleRules = registryRules.filter((r) => r.canonical === undefined || !ownedBefore.has(r.canonical));
  const peopleCanonical = new Set(peopleRules.flatMap((r) => (r.canonical === undefined ? [] : [r.canonical])));
  const pinned = uniqueCanonical(input.pinnedRules);
  const pinnedNeedingSlot = pinned.filter((rule) => !peopleCanonical.has(rule));

  const budget = snapshot.ruleLimit - policy.headroom - peopleRules.length - pinnedNeedingSlot.length;

  // The rules the service wants to own.
  let desiredCover: string[];
  let aggregation: Plan["aggregation"];
  const reasons = new Map<string, string>();
  if (desired.kind === "service-tags") {
    const published = desired.tags.flatMap((tag) => tag.prefixes);
    const merged = mergePrefixes(published);
    if (budget < 1) {
      throw new CoverInfeasibleError(
        `Registry ${snapshot.ref.name} has no room for service rules: limit ${snapshot.ruleLimit}, people's rules ${peopleRules.length}, pinned ${pinnedNeedingSlot.length}, headroom ${policy.headroom}.`,
        {
          details: {
            registry: snapshot.ref.id,
            limit: snapshot.ruleLimit,
            peopleRules: peopleRules.length,
            pinnedRules: pinnedNeedingSlot.length,
            headroom: policy.headroom,
            budget,
            minimumBudget: 1,
          },
          remedy: "Remove some hand-made rules, lower SYNC_HEADROOM, or unpin rules.",
        },
      );
    }
    const cover = optimalCover(merged, {
      maxPrefixes: budget,
      minPrefixLength: policy.minPrefixLength,
      maxExtraAddresses: policy.maxExtraAddresses,
      maxExtraRatio: policy.maxExtraRatio,
      preferred: [...ownedBefore].map((rule) => parsePrefix(rule, { mode: "strict" }).prefix),
    });
    desiredCover = cover.prefixes.map(formatPrefix);
    aggregation = {
      publishedPrefixes: published.length,
      mergedPrefixes: merged.length,
      targetAddresses: cover.targetAddresses,
      coveredAddresses: cover.coveredAddresses,
      extraAddresses: cover.extraAddresses,
      minPrefixLength: policy.minPrefixLength,
    };
    for (const rule of desiredCover) reasons.set(rule, describeCoverRule(rule, desired.tags));
  } else {
    desiredCover = desired.kind === "rollback" ? uniqueCanonical(desired.ownedRules) : [];
    const size = desiredCover.reduce((sum, rule) => sum + prefixSize(parsePrefix(rule, { mode: "strict" }).prefix), 0);
    aggregation = {
      publishedPrefixes: desiredCover.length,
      mergedPrefixes: desiredCover.length,
      targetAddresses: size,
      coveredAddresses: size,
      extraAddresses: 0,
      minPrefixLength: policy.minPrefixLength,
    };
    if (desired.kind === "rollback")
      for (const rule of desiredCover) reasons.set(rule, `restored from audit entry ${desired.auditId}`);
  }

  // Rules the service owns after the plan: the cover and the pinned rules, minus what people already hold.
  const ownedAfterSet = new Set<string>();
  for (const rule of [...desiredCover, ...pinned]) if (!peopleCanonical.has(rule)) ownedAfterSet.add(rule);
  for (const rule of pinned) reasons.set(rule, "pinned by configuration");

  const driftSet = new Set(drift);
  const adds: PlannedRule[] = [];
  const kept: PlannedRule[] = [];
  const removes: PlannedRule[] = [];
  for (const rule of sortRules(ownedAfterSet)) {
    const owner: RuleOwner = pinned.includes(rule) ? "pinned" : "service";
    const reason = reasons.get(rule) ?? "owned";
    if (onRegistry.has(rule)) kept.push({ rule, owner, reason });
    else adds.push({ rule, owner, reason: driftSet.has(rule) ? `${reason} (re-added: someone removed it)` : reason });
  }
  for (const rule of sortRules(ownedBefore)) {
    if (!ownedAfterSet.has(rule))
      removes.push({ rule, owner: "service", reason: removalReason(rule, desired, ownedAfterSet) });
  }
  for (const r of peopleRules) {
    const rule = r.canonical ?? r.raw;
    kept.push({
      rule,
      owner: "people",
      reason:
        peopleCanonical.has(rule) && ownedAfterSet.has(rule)
          ? "held by people"
          : "added by people: never changed by this service",
    });
  }

  // The list to send: every existing value that stays, untouched and in place, then the additions.
  const removeSet = new Set(removes.map((r) => r.rule));
  const ipRulesAfter = [
    ...registryRules.filter((r) => r.canonical === undefined || !removeSet.has(r.canonical)).map((r) => r.raw),
    ...adds.map((r) => r.rule),
  ];

  const finalPrefixes = mergePrefixes([
    ...registryRules
      .filter((r) => r.canonical === undefined || !removeSet.has(r.canonical))
      .flatMap((r) => (r.prefix === undefined ? [] : [r.prefix])),
    ...adds.map((a) => parsePrefix(a.rule, { mode: "strict" }).prefix),
  ]);
  const revokedRules = removes
    .map((r) => r.rule)
    .filter((rule) => !isInside(parsePrefix(rule, { mode: "strict" }).prefix, finalPrefixes));

  if (snapshot.networkRuleBypassAllowedForTasks !== true) {
    warnings.push({
      code: "bypass-for-tasks-disabled",
      message:
        "networkRuleBypassAllowedForTasks is not true: ACR Tasks that use a system-assigned identity still get 403 behind the firewall. Set it on the registry if you use them (az resource update --ids <registry id> --set properties.networkRuleBypassAllowedForTasks=true). This service never changes it.",
    });
  }
  if (snapshot.defaultAction === "Allow") {
    warnings.push({
      code: "default-action-allow",
      message:
        "defaultAction is Allow: the firewall is off and IP rules have no effect. This service never changes defaultAction.",
    });
  }
  if (snapshot.publicNetworkAccess === "Disabled") {
    warnings.push({
      code: "public-network-disabled",
      message: "publicNetworkAccess is Disabled: IP rules have no effect while public access is off.",
    });
  }
  if (snapshot.apiVersionFallback !== undefined) {
    const { from, to, armCode } = snapshot.apiVersionFallback;
    warnings.push({
      code: "api-version-fallback",
      message: `ARM refused api-version ${from} (${armCode}); this run used ${to}, whose networkRuleSet has the same shape. Set ARM_API_VERSION=${to} to skip the refused request, or remove it once the cloud offers ${from}.`,
    });
  }
  if (snapshot.ruleLimitSource === "default") {
    warnings.push({
      code: "limit-defaulted",
      message: `listUsages did not report an IPRules limit; assuming ${snapshot.ruleLimit}.`,
    });
  }
  if (desired.kind === "service-tags") {
    const ipv6 = desired.tags.reduce((sum, tag) => sum + tag.ipv6Count, 0);
    if (ipv6 > 0)
      warnings.push({
        code: "ipv6-skipped",
        message: `${count(ipv6, "IPv6 prefix", "IPv6 prefixes")} skipped: ACR IP rules are IPv4 only.`,
      });
    warnings.push(...(desired.sourceWarnings ?? []));
  }

  return {
    schemaVersion: 1,
    registry: {
      id: snapshot.ref.id,
      name: snapshot.ref.name,
      location: snapshot.location,
      sku: snapshot.sku,
      provisioningState: snapshot.provisioningState,
      publicNetworkAccess: snapshot.publicNetworkAccess,
      defaultAction: snapshot.defaultAction,
      networkRuleBypassOptions: snapshot.networkRuleBypassOptions,
      networkRuleBypassAllowedForTasks: snapshot.networkRuleBypassAllowedForTasks,
      legacyVirtualNetworkRules: snapshot.legacyVirtualNetworkRules ?? 0,
    },
    source:
      desired.kind === "service-tags"
        ? {
            kind: "service-tags",
            origin: desired.origin,
            regions: desired.regions,
            tags: desired.tags.map((tag) => ({
              name: tag.name,
              changeNumber: tag.changeNumber,
              ipv4Prefixes: tag.ipv4.length,
              ipv6Skipped: tag.ipv6Count,
            })),
          }
        : desired.kind === "rollback"
          ? { kind: "rollback", auditId: desired.auditId }
          : { kind: "release" },
    ownership: ledger === undefined ? "adopted" : "ledger",
    adds,
    removes,
    kept,
    ipRulesAfter,
    ownedAfter: sortRules(ownedAfterSet),
    ownedBefore: sortRules(ownedBefore),
    counts: {
      before: snapshot.ipRules.length,
      after: ipRulesAfter.length,
      limit: snapshot.ruleLimit,
      limitSource: snapshot.ruleLimitSource,
      peopleRules: peopleRules.length,
      pinnedRules: pinned.length,
      serviceRules: ownedAfterSet.size,
      headroom: policy.headroom,
      budget,
    },
    aggregation,
    drift,
    staleTags:
      desired.kind === "service-tags" && ledger !== undefined
        ? desired.tags.flatMap((tag) => {
            const applied = ledger.appliedTagChangeNumbers[tag.name];
            return applied !== undefined && applied > tag.changeNumber
              ? [{ name: tag.name, changeNumber: tag.changeNumber, appliedChangeNumber: applied }]
              : [];
          })
        : [],
    revokedRules,
    changed: adds.length > 0 || removes.length > 0,
    warnings,
    guards: [],
  };
}

function readRegistryRule(raw: string, warnings: PlanWarning[]): RegistryRule {
  try {
    const { prefix, hostBitsCleared } = parsePrefix(raw, { mode: "lenient" });
    const canonical = formatPrefix(prefix);
    if (hostBitsCleared) {
      warnings.push({
        code: "host-bits-canonicalised",
        message: `Registry rule '${raw}' has host bits set; it is compared as ${canonical} and left as it is.`,
      });
    }
    return { raw, canonical, prefix };
  } catch {
    warnings.push({
      code: "unparseable-rule",
      message: `Registry rule '${raw}' is not an IPv4 address or CIDR; it is treated as a person's rule and left as it is.`,
    });
    return { raw, canonical: undefined, prefix: undefined };
  }
}

function uniqueCanonical(rules: readonly string[]): string[] {
  return sortRules(new Set(rules.map((rule) => formatPrefix(parsePrefix(rule, { mode: "strict" }).prefix))));
}

/** Numeric order of canonical rules: stable output, readable diffs. */
export function sortRules(rules: Iterable<string>): string[] {
  return [...rules]
    .map((rule) => ({ rule, prefix: parsePrefix(rule, { mode: "lenient" }).prefix }))
    .sort((a, b) => a.prefix.base - b.prefix.base || a.prefix.length - b.prefix.length)
    .map((entry) => entry.rule);
}

/** True when `prefix` lies entirely inside one prefix of a merged (sorted, disjoint) list. */
export function isInside(prefix: Prefix, merged: readonly Prefix[]): boolean {
  let lo = 0;
  let hi = merged.length - 1;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    const candidate = merged[mid];
    if (candidate === undefined) return false;
    if (prefixEnd(candidate) < prefix.base) lo = mid + 1;
    else if (candidate.base > prefix.base) hi = mid - 1;
    else return prefixEnd(prefix) <= prefixEnd(candidate);
  }
  return false;
}

function overlaps(a: Prefix, b: Prefix): boolean {
  return a.base <= prefixEnd(b) && b.base <= prefixEnd(a);
}

function describeCoverRule(rule: string, tags: readonly SelectedTag[]): string {
  const prefix = parsePrefix(rule, { mode: "strict" }).prefix;
  const names = tags
    .filter((tag) => tag.prefixes.some((published) => overlaps(prefix, published)))
    .map((tag) => tag.name);
  const exact = tags.some((tag) =>
    tag.prefixes.some((published) => published.base === prefix.base && published.length === prefix.length),
  );
  return exact ? `published in ${names.join(", ")}` : `aggregate covering ranges of ${names.join(", ")}`;
}

function removalReason(rule: string, desired: DesiredSource, ownedAfter: Set<string>): string {
  if (desired.kind === "rollback") return `not in audit entry ${desired.auditId}`;
  if (desired.kind === "release") return "released: this service stops managing the registry";
  const prefix = parsePrefix(rule, { mode: "strict" }).prefix;
  const replacement = [...ownedAfter].find((other) => overlaps(prefix, parsePrefix(other, { mode: "strict" }).prefix));
  return replacement === undefined ? "no longer published in the selected tags" : `replaced by ${replacement}`;
}
