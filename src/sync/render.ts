import type { Plan, PlannedRule } from "./plan.js";

export interface RenderOptions {
  /** List every rule that stays (`=` rows). Default true; the CLI collapses them to a count unless asked. */
  readonly showUnchanged?: boolean;
  /** Escape-code wrappers for a terminal; plain text by default. */
  readonly colours?: Colours;
}

export interface Colours {
  readonly red: (text: string) => string;
  readonly green: (text: string) => string;
  readonly yellow: (text: string) => string;
  readonly dim: (text: string) => string;
  readonly bold: (text: string) => string;
}

const plain = (text: string): string => text;

/** `12,345`: the CLI and the text plan share one number format. */
export function thousands(value: number): string {
  return value.toLocaleString("en-US");
}
const n = thousands;

/** `1 rule`, `2 rules`, with thousands separators. */
export function count(value: number, singular: string, plural = `${singular}s`): string {
  return `${n(value)} ${value === 1 ? singular : plural}`;
}

/** A readable diff of a plan, for the CLI and `GET /api/plan?format=text`. */
export function renderPlan(plan: Plan, options: RenderOptions = {}): string {
  const colours = options.colours ?? { red: plain, green: plain, yellow: plain, dim: plain, bold: plain };
  const lines: string[] = [];
  const r = plan.registry;
  lines.push(`Registry ${r.name} (${r.location}, ${r.sku}, defaultAction ${r.defaultAction})`);
  lines.push(`  ${r.id}`);
  if (plan.source.kind === "service-tags") {
    const o = plan.source.origin;
    lines.push(`Source: ${o.fileName} (${o.kind}, cloud ${o.cloud}, changeNumber ${o.changeNumber})`);
    if (o.publishedAt !== undefined && o.dataAgeDays !== undefined) {
      const basis = o.ageBasis === "first-seen" ? "first seen" : o.ageBasis === "retrieved" ? "retrieved" : "published";
      lines.push(`  data ${basis} ${o.publishedAt.slice(0, 10)}: ${o.dataAgeDays} day(s) old`);
    }
    for (const tag of plan.source.tags) {
      lines.push(
        `  ${tag.name} changeNumber ${tag.changeNumber}: ${count(tag.ipv4Prefixes, "IPv4 prefix", "IPv4 prefixes")}${tag.ipv6Skipped > 0 ? `, ${n(tag.ipv6Skipped)} IPv6 skipped` : ""}`,
      );
    }
  } else if (plan.source.kind === "rollback") {
    lines.push(`Source: rollback to audit entry ${plan.source.auditId}`);
  } else {
    lines.push("Source: release: the owned rules are removed, people's rules stay");
  }
  const c = plan.counts;
  lines.push(
    `Rules: ${n(c.before)} -> ${n(c.after)} of ${n(c.limit)}${c.limitSource === "default" ? " (assumed)" : ""}: people ${n(c.peopleRules)}, pinned ${n(c.pinnedRules)}, service ${n(c.serviceRules)}; budget ${n(c.budget)} after headroom ${n(c.headroom)}`,
  );
  const a = plan.aggregation;
  lines.push(
    `Published: ${count(a.publishedPrefixes, "prefix", "prefixes")}, ${n(a.mergedPrefixes)} after merge, ${count(a.targetAddresses, "address", "addresses")}; extra addresses admitted: ${n(a.extraAddresses)}`,
  );
  lines.push(`Ownership: ${plan.ownership === "ledger" ? "from the ledger" : "adopted (no ledger yet)"}`);
  lines.push("");
  const showUnchanged = options.showUnchanged ?? true;
  const shownKept = showUnchanged ? plan.kept : [];
  const width = Math.max(18, ...[...plan.adds, ...plan.removes, ...shownKept].map((rule) => rule.rule.length));
  const row = (mark: string, rule: PlannedRule) =>
    `  ${mark} ${rule.rule.padEnd(width)}  ${rule.owner.padEnd(7)}  ${rule.reason}`;
  for (const rule of plan.adds) lines.push(colours.green(row("+", rule)));
  for (const rule of plan.removes) lines.push(colours.red(row("-", rule)));
  for (const rule of shownKept) lines.push(colours.dim(row("=", rule)));
  if (!showUnchanged && plan.kept.length > 0)
    lines.push(colours.dim(`  = ${count(plan.kept.length, "unchanged rule")} (--show-unchanged lists them)`));
  if (plan.adds.length + plan.removes.length + plan.kept.length === 0) lines.push("  (no rules)");
  lines.push("");
  lines.push(
    plan.changed
      ? `Changes: ${n(plan.adds.length)} to add, ${n(plan.removes.length)} to remove.`
      : "No changes: the registry already holds the planned rules.",
  );
  for (const warning of plan.warnings) lines.push(colours.yellow(`warning: ${warning.message}`));
  for (const guard of plan.guards) lines.push(colours.red(`guard ${guard.guard}: ${guard.message}`));
  return lines.join("\n") + "\n";
}
