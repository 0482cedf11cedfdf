import type { Plan, PlannedRule } from "./plan.js";

/** A readable diff of a plan, for the CLI and `GET /api/plan?format=text`. */
export function renderPlan(plan: Plan): string {
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
        `  ${tag.name} changeNumber ${tag.changeNumber}: ${tag.ipv4Prefixes} IPv4 prefix(es)${tag.ipv6Skipped > 0 ? `, ${tag.ipv6Skipped} IPv6 skipped` : ""}`,
      );
    }
  } else {
    lines.push(`Source: rollback to audit entry ${plan.source.auditId}`);
  }
  const c = plan.counts;
  lines.push(
    `Rules: ${c.before} -> ${c.after} of ${c.limit}${c.limitSource === "default" ? " (assumed)" : ""}: people ${c.peopleRules}, pinned ${c.pinnedRules}, service ${c.serviceRules}; budget ${c.budget} after headroom ${c.headroom}`,
  );
  const a = plan.aggregation;
  lines.push(
    `Published: ${a.publishedPrefixes} prefix(es), ${a.mergedPrefixes} after merge, ${a.targetAddresses} address(es); extra addresses admitted: ${a.extraAddresses}`,
  );
  lines.push(`Ownership: ${plan.ownership === "ledger" ? "from the ledger" : "adopted (no ledger yet)"}`);
  lines.push("");
  const width = Math.max(18, ...[...plan.adds, ...plan.removes, ...plan.kept].map((rule) => rule.rule.length));
  const row = (mark: string, rule: PlannedRule) =>
    `  ${mark} ${rule.rule.padEnd(width)}  ${rule.owner.padEnd(7)}  ${rule.reason}`;
  for (const rule of plan.adds) lines.push(row("+", rule));
  for (const rule of plan.removes) lines.push(row("-", rule));
  for (const rule of plan.kept) lines.push(row("=", rule));
  if (plan.adds.length + plan.removes.length + plan.kept.length === 0) lines.push("  (no rules)");
  lines.push("");
  lines.push(
    plan.changed
      ? `Changes: ${plan.adds.length} to add, ${plan.removes.length} to remove.`
      : "No changes: the registry already holds the planned rules.",
  );
  for (const warning of plan.warnings) lines.push(`warning: ${warning.message}`);
  for (const guard of plan.guards) lines.push(`guard ${guard.guard}: ${guard.message}`);
  return lines.join("\n") + "\n";
}
