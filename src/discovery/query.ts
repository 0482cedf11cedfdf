import type { DiscoveryScope } from "../config/settings.js";

/**
 * The one Resource Graph query discovery sends (azure-facts §8). `tags['key']` would compare the
 * tag *name* case-sensitively while ARM treats names case-insensitively, so the tags are expanded
 * and compared with `=~`; values are compared with `=~` too, so `Enabled` and `enabled` both count.
 * `id` is projected because Resource Graph pages only queries that project it. The tag parts are
 * validated in the settings (no quotes), so they cannot break out of the string literals.
 */
export function discoveryQuery(tag: { readonly key: string; readonly value: string }): string {
  return [
    "Resources",
    "| where type =~ 'microsoft.containerregistry/registries'",
    "| mv-expand bagexpansion=array tag = tags",
    `| where tostring(tag[0]) =~ '${tag.key}' and tostring(tag[1]) =~ '${tag.value}'`,
    "| project id, name, location, sku = tostring(sku.name), tags, subscriptionId, resourceGroup",
    "| order by id asc",
  ].join("\n");
}

export interface ScopeFields {
  readonly subscriptions?: string[];
  readonly managementGroups?: string[];
}

/**
 * The scope fields of the requests: none means every subscription the identity can read.
 * Subscriptions and management groups go in separate requests: whether Resource Graph accepts
 * both in one request is not confirmed, and the results are merged by resource ID anyway.
 */
export function scopeRequests(scopes: readonly DiscoveryScope[]): ScopeFields[] {
  const subscriptions = [...new Set(scopes.filter((s) => s.kind === "subscription").map((s) => s.id))];
  const managementGroups = [...new Set(scopes.filter((s) => s.kind === "managementGroup").map((s) => s.id))];
  if (subscriptions.length === 0 && managementGroups.length === 0) return [{}];
  return [
    ...(subscriptions.length > 0 ? [{ subscriptions }] : []),
    ...(managementGroups.length > 0 ? [{ managementGroups }] : []),
  ];
}

/** `x-ms-user-quota-resets-after` is `hh:mm:ss`; undefined when absent or unreadable. */
export function parseResetsAfter(value: string | undefined): number | undefined {
  const match = /^(\d{1,2}):(\d{2}):(\d{2})$/.exec(value?.trim() ?? "");
  if (match === null) return undefined;
  const [, h = "0", m = "0", s = "0"] = match;
  return ((Number(h) * 60 + Number(m)) * 60 + Number(s)) * 1000;
}
