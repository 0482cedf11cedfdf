import { parsePrefix, prefixContains, type Prefix } from "../prefixes/ipv4.js";
import { ACR_TAG } from "../servicetags/select.js";
import type { RunStatus } from "./tasks-schema.js";

/**
 * What a canary run means, from its outcome, its log and the current service-tags file. Pure:
 * every sentence an operator reads about a canary is made here, and tested exactly.
 */

export type CanaryVerdict =
  /** The agent logged in and the run succeeded. */
  | "admitted"
  /** The log shows the firewall refusing the agent's IP. */
  | "refused"
  /** The run did not succeed for a reason other than the firewall (quota, platform, its own timeout). */
  | "failed"
  /** Nobody can tell: the log could not be read, or the run did not end in time without a refusal in its log. */
  | "inconclusive";

export interface CanaryDiagnosis {
  readonly verdict: CanaryVerdict;
  /** True only for `admitted`. */
  readonly ok: boolean;
  readonly refusedIp: string | undefined;
  /** Every tag of the current file holding the refused IP: regional ACR tags, then the global ACR tag, then the others. */
  readonly containingTags: readonly string[];
  /** One sentence: what happened. */
  readonly summary: string;
  /** What to do about it. */
  readonly advice: string;
  readonly warnings: readonly string[];
}

export interface TagRanges {
  readonly name: string;
  readonly properties: { readonly addressPrefixes: readonly string[] };
}

export interface DiagnosisInput {
  /** Registry name, as operators know it. */
  readonly registry: string;
  readonly location: string;
  /** When the run was scheduled (ISO 8601): with the run ID, the evidence for a support case. */
  readonly at: string;
  /** Undefined when the run could not be scheduled. */
  readonly run:
    { readonly runId: string; readonly status: RunStatus; readonly runErrorMessage?: string | undefined } | undefined;
  /** Set when scheduling failed: the typed error's code and one-line description. */
  readonly scheduleError?:
    { readonly code: string; readonly message: string; readonly remedy?: string | undefined } | undefined;
  /** Set when the deadline passed before the run reached a terminal state. */
  readonly deadlineMs?: number | undefined;
  /** The log as read, or why it could not be read; undefined when it was not needed (the run succeeded). */
  readonly log?: { readonly text: string } | { readonly unreadable: string } | undefined;
  /** The registry as read before the run. */
  readonly registryState: {
    readonly defaultAction: "Allow" | "Deny";
    readonly ipRules: readonly string[];
    readonly networkRuleBypassAllowedForTasks: boolean | undefined;
  };
  /** ARM locations whose ACR tags the registry is synced with. */
  readonly allowedRegions: readonly string[];
  /** The current service-tags file; undefined when it could not be fetched. */
  readonly serviceTags: { readonly fileName: string; readonly values: readonly TagRanges[] } | undefined;
  /** The run's own timeout, for the message of a `Timeout`. */
  readonly runTimeoutSeconds: number;
}

/** The refusal line ACR Tasks logs at login (azure-facts §11; not documented by Microsoft, seen in public logs). */
const REFUSAL = /denied: client with IP '([^']{1,64})' is not allowed access/;

export function diagnoseCanary(input: DiagnosisInput): CanaryDiagnosis {
  const warnings = warningsFor(input);
  const { registry, run } = input;
  const logsCmd = run === undefined ? "" : `az acr task logs --registry ${registry} --run-id ${run.runId}`;

  if (run === undefined) {
    const error = input.scheduleError ?? { code: "Unknown", message: "no run was scheduled" };
    return {
      verdict: "failed",
      ok: false,
      refusedIp: undefined,
      containingTags: [],
      summary: `The canary run could not be scheduled on ${registry} (${error.code}): ${error.message}`,
      advice: `Not an allowlist failure: ACR Tasks refused or failed the request (permissions, quota, platform). ${error.remedy ?? "The next canary tries again."}`,
      warnings,
    };
  }

  if (run.status === "Succeeded") {
    return {
      verdict: "admitted",
      ok: true,
      refusedIp: undefined,
      containingTags: [],
      summary: `The ACR Tasks agent got into ${registry} (run ${run.runId} Succeeded).`,
      advice: warnings.length === 0 ? "Nothing to do." : "Nothing to do for the agent; read the warnings.",
      warnings,
    };
  }

  const log = input.log;
  const refusedIp = log !== undefined && "text" in log ? REFUSAL.exec(log.text)?.[1] : undefined;
  if (refusedIp !== undefined) return refused(input, run.runId, refusedIp, warnings);

  if (log !== undefined && "unreadable" in log) {
    return {
      verdict: "inconclusive",
      ok: false,
      refusedIp: undefined,
      containingTags: [],
      summary: `Run ${run.runId} on ${registry} ended ${ended(input)}, and its log could not be read (${log.unreadable}): whether the firewall refused the agent is unknown.`,
      advice: `Read the log with '${logsCmd}'; the next canary tries again.`,
      warnings,
    };
  }

  if (input.deadlineMs !== undefined) {
    return {
      verdict: "inconclusive",
      ok: false,
      refusedIp: undefined,
      containingTags: [],
      summary: `Run ${run.runId} on ${registry} did not finish within ${input.deadlineMs} ms (last status ${run.status}), and its log shows no refusal so far.`,
      advice: `The next canary tries again; if runs keep hanging, read the log with '${logsCmd}' and check ACR Tasks on https://status.azure.com.`,
      warnings,
    };
  }

  const reason =
    run.status === "Timeout"
      ? `the run exceeded its ${input.runTimeoutSeconds} s timeout`
      : (run.runErrorMessage ?? "no error message");
  return {
    verdict: "failed",
    ok: false,
    refusedIp: undefined,
    containingTags: [],
    summary: `Run ${run.runId} on ${registry} ended ${run.status} for a reason other than the firewall: ${reason}.`,
    advice: `Not an allowlist failure (the log shows no refusal): read it with '${logsCmd}' and check ACR Tasks on https://status.azure.com; the next canary tries again.`,
    warnings,
  };
}

function ended(input: DiagnosisInput): string {
  return input.deadlineMs !== undefined
    ? `without a result within ${input.deadlineMs} ms (last status ${input.run?.status ?? "unknown"})`
    : (input.run?.status ?? "unknown");
}

function refused(input: DiagnosisInput, runId: string, ip: string, warnings: readonly string[]): CanaryDiagnosis {
  const { registry, location, at } = input;
  const summary = `The firewall of ${registry} refused the ACR Tasks agent: run ${runId} at ${at} came from ${ip}.`;
  const address = parseAddress(ip);
  const base = { verdict: "refused" as const, ok: false, refusedIp: ip, summary, warnings };
  if (address === undefined) {
    return {
      ...base,
      containingTags: [],
      advice: `${ip} is not an IPv4 address, and registry IP rules are IPv4 only. Evidence for a support case: run ${runId} on ${registry} (${location}) at ${at}.`,
    };
  }
  if (input.serviceTags === undefined) {
    return {
      ...base,
      containingTags: [],
      advice: `The service-tags file could not be read, so which tags hold ${ip} is unknown; the next canary checks again. Evidence for a support case meanwhile: run ${runId} on ${registry} (${location}) at ${at}.`,
    };
  }
  const { fileName } = input.serviceTags;
  const containingTags = tagsContaining(input.serviceTags.values, address);
  const regional = containingTags.filter((name) => regionOf(name) !== undefined);
  const allowed = new Set(input.allowedRegions.map((region) => region.toLowerCase()));
  const allowedRegional = regional.filter((name) => allowed.has(regionOf(name) ?? ""));

  if (allowedRegional.length > 0) {
    const tag = allowedRegional[0] ?? "";
    const rule = input.registryState.ipRules.find((text) => covers(text, address));
    return {
      ...base,
      containingTags,
      advice:
        rule === undefined
          ? `${ip} is in ${tag}, which ${registry} allows, but none of its IP rules covers it: run a sync (acr-allowlist-sync apply --registry ${registry}) and read its plan.`
          : `${ip} is in ${tag}, which ${registry} allows, and its rule ${rule} covers it: rules take a few minutes to take effect, so wait for the next canary; if it is refused too, open a support case with run ${runId} at ${at}.`,
    };
  }
  if (regional.length > 0) {
    const regions = regional.map((name) => regionOf(name) ?? "");
    const list = regions.length === 1 ? `region ${regions[0] ?? ""}` : `one of the regions ${regions.join(", ")}`;
    return {
      ...base,
      containingTags,
      advice: `Add ${list} to ${registry} (SYNC_REGIONS, or "regions" in TARGET_REGISTRIES): ${ip} is in ${regional.join(", ")}, not in the tags of the regions it allows (${[...allowed].join(", ")}).`,
    };
  }
  const evidence = `Evidence for a support case: run ${runId} on ${registry} (${location}) at ${at} was refused from ${ip}`;
  if (containingTags.includes(ACR_TAG)) {
    return {
      ...base,
      containingTags,
      advice: `${ip} is in the global ${ACR_TAG} tag but in no regional one, so there is no region to add. ${evidence}, which ${fileName} lists only under ${ACR_TAG}.`,
    };
  }
  const elsewhere = containingTags.length === 0 ? "" : ` (it is in ${containingTags.join(", ")})`;
  return {
    ...base,
    containingTags,
    advice: `${ip} is in no ${ACR_TAG} range of ${fileName}${elsewhere}. ${evidence}, an address Microsoft does not publish for ACR.`,
  };
}

function warningsFor(input: DiagnosisInput): string[] {
  const warnings: string[] = [];
  if (input.registryState.networkRuleBypassAllowedForTasks === true)
    warnings.push(
      `networkRuleBypassAllowedForTasks is true on ${input.registry}: tasks bypass its firewall, so a run that gets in proves nothing about the IP rules.`,
    );
  if (input.registryState.defaultAction === "Allow")
    warnings.push(
      `defaultAction is Allow on ${input.registry}: the firewall admits every address, so a run that gets in proves nothing about the IP rules.`,
    );
  return warnings;
}

/** `AzureContainerRegistry.JapanEast` → `japaneast`; undefined for the global tag and every other tag. */
function regionOf(tagName: string): string | undefined {
  const prefix = `${ACR_TAG.toLowerCase()}.`;
  const name = tagName.toLowerCase();
  return name.startsWith(prefix) && name.length > prefix.length ? name.slice(prefix.length) : undefined;
}

/** Every tag holding the address: regional ACR tags, then the global ACR tag, then the others, each group by name. */
export function tagsContaining(values: readonly TagRanges[], address: number): string[] {
  const host: Prefix = { base: address, length: 32 };
  const names = new Set<string>();
  for (const tag of values) {
    for (const text of tag.properties.addressPrefixes) {
      if (text.includes(":")) continue;
      const prefix = tryParse(text);
      if (prefix !== undefined && prefixContains(prefix, host)) {
        names.add(tag.name);
        break;
      }
    }
  }
  const rank = (name: string): number => (regionOf(name) !== undefined ? 0 : name === ACR_TAG ? 1 : 2);
  return [...names].sort((a, b) => rank(a) - rank(b) || (a < b ? -1 : a > b ? 1 : 0));
}

function covers(rule: string, address: number): boolean {
  const prefix = tryParse(rule);
  return prefix !== undefined && prefixContains(prefix, { base: address, length: 32 });
}

function parseAddress(text: string): number | undefined {
  if (text.includes("/")) return undefined;
  return tryParse(text)?.base;
}

function tryParse(text: string): Prefix | undefined {
  try {
    return parsePrefix(text, { mode: "lenient" }).prefix;
  } catch {
    return undefined;
  }
}
